"""Run the real program offline, under Pulumi's mock runtime, and record what it declares.

This is the engine of the offline plan (``python -m infra.plan``), of the whole-stack tests, of
the DR runbook and of the benchmark. It runs exactly the program ``pulumi up`` runs
(:func:`infra.program.main`), with the stack file's config encoded the way the Pulumi CLI hands
it over; only the engine is replaced:

* :class:`RecordingMonitor` keeps every ``RegisterResource`` request whole: parent, provider,
  dependencies, ``protect``/``retainOnDelete`` and the inputs, secrets still marked.
* :class:`PlatformMocks` answers each resource with realistic outputs (ARNs, repository URLs,
  cluster endpoints, kubeconfigs) derived from its inputs and from the account and region of the
  provider it was declared with, never from constants written for one stack.

What comes out is the program's *desired state*. It is not a diff against the live cloud; that
is what ``pulumi preview`` is for.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from infra import config as cfg
from infra import naming
from infra.naming import PROJECT

SECRET_MARK = "[secret]"


@dataclass
class Resource:
    """One declared resource, as the engine would receive it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    provider: str | None
    providers: dict[str, str]
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    ignore_changes: list[str]
    remote: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    # How many `transforms` callbacks the resource registered with (the mock engine never runs
    # them: children of a packaged component such as pulumi-eks's are not simulated).
    transforms: int = 0
    replace_on_changes: list[str] = field(default_factory=list)
    # The ``replaceWith`` option: URNs whose replacement replaces this resource too.
    replace_with: list[str] = field(default_factory=list)

    @property
    def is_provider(self) -> bool:
        return self.type.startswith("pulumi:providers:")


@dataclass
class Plan:
    """Everything one offline run declared, in declaration order."""

    stack: str
    config: cfg.StackConfig
    resources: list[Resource]
    outputs: dict[str, Any]
    _index: dict[str, Resource] = field(default_factory=dict, init=False, repr=False, compare=False)

    def by_urn(self) -> dict[str, Resource]:
        return {r.urn: r for r in self.resources}

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Resource:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} named {name}, found {len(found)}")
        return found[0]

    def region_of(self, resource: Resource) -> str | None:
        """The region a resource lives in: its AWS provider's, or that of its nearest regional
        ancestor (a Kubernetes provider belongs to the cluster component that built it)."""
        # Asked once per resource by the plan view, the policies and the DR runbook: rebuilding
        # the index on every call made those quadratic in the number of resources.
        if len(self._index) != len(self.resources):
            self._index = self.by_urn()
        return _region_of(self._index, resource, self.config.region_names)

    def children(self, urn: str) -> list[Resource]:
        return [r for r in self.resources if r.parent == urn]


def _region_of(index: Mapping[str, Resource], resource: Resource, regions: Iterable[str]) -> str | None:
    regions = tuple(regions)
    seen: set[str] = set()
    current: Resource | None = resource
    while current is not None and current.urn not in seen:
        seen.add(current.urn)
        if current.type == "pulumi:providers:aws":
            region = current.inputs.get("region")
            return str(region) if region else None
        provider_urn = current.provider or current.providers.get("aws")
        if provider_urn and provider_urn in index and provider_urn != current.urn:
            found = _region_of(index, index[provider_urn], regions)
            if found:
                return found
        for region in regions:
            if current.name == region or current.name.endswith(f"-{region}"):
                return region
        current = index.get(current.parent) if current.parent else None
    return None


# ---------------------------------------------------------------------------------------------
# The engine side: recording monitor and realistic mocks
# ---------------------------------------------------------------------------------------------


def _provider_urn(ref: str) -> str | None:
    # Provider references are "<urn>::<id>"; the URN itself contains "::", the id never does.
    if not ref:
        return None
    return ref.rsplit("::", 1)[0]


def _redact(value: Any) -> Any:
    if rpc.is_rpc_secret(value):
        return SECRET_MARK
    if isinstance(value, float) and value.is_integer():
        # The wire format has only doubles; the program wrote whole numbers.
        return int(value)
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def _unwrap(value: Any) -> Any:
    if rpc.is_rpc_secret(value):
        return _unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unwrap(v) for v in value]
    return value


def _resource_refs_to_urns(struct: Any) -> None:
    """Replace resource references among a request's inputs by their URNs, in place.

    A resource passed as an input (pulumi-eks's ``clusterSecurityGroup``) arrives as a reference;
    deserializing it would re-hydrate the resource with a ``get`` on the monitor's thread and
    event loop, which the run's loop cannot await. The recording keeps the URN, which is what
    the engine would show.
    """
    for key in list(struct.fields):
        _value_refs_to_urns(struct.fields[key])


def _value_refs_to_urns(value: Any) -> None:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        fields = value.struct_value.fields
        sig = fields.get(rpc._special_sig_key)
        if sig is not None and sig.string_value == rpc._special_resource_sig:
            value.string_value = fields["urn"].string_value
            return
        _resource_refs_to_urns(value.struct_value)
    elif kind == "list_value":
        for item in value.list_value.values:
            _value_refs_to_urns(item)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that keeps each registration whole, in order."""

    def __init__(self, mocks: PlatformMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Resource] = []
        self.platform_mocks = mocks
        # The SDK registers resources from a thread pool; one at a time keeps the hand-over of
        # the request to the mocks (which need its provider and secrets) consistent.
        self._lock = threading.RLock()

    def RegisterResource(self, request: Any) -> Any:
        with self._lock:
            return self._register(request)

    def _register(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        _resource_refs_to_urns(request.object)
        urn = self.make_urn(request.parent, request.type, request.name)
        raw_inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        provider = _provider_urn(request.provider)
        resource = Resource(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent or None,
            provider=provider,
            providers={k: _provider_urn(v) or "" for k, v in sorted(request.providers.items())},
            dependencies=sorted(set(request.dependencies)),
            property_dependencies={
                k: sorted(set(v.urns)) for k, v in sorted(request.propertyDependencies.items())
            },
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            delete_before_replace=bool(request.deleteBeforeReplace),
            ignore_changes=sorted(request.ignoreChanges),
            remote=bool(request.remote),
            inputs=_redact(raw_inputs),
            transforms=len(request.transforms),
            replace_on_changes=sorted(request.replaceOnChanges),
            replace_with=sorted(request.replace_with),
        )
        self.recorded.append(resource)
        self.platform_mocks.context = resource
        self.platform_mocks.plain_inputs = _unwrap(raw_inputs)
        response = super().RegisterResource(request)
        resource.outputs = _redact(self.resources[urn].state)
        return response


STACK_REFERENCE = "pulumi:pulumi:StackReference"


def stack_reference_outputs(name: str) -> dict[str, Any]:
    """Stand-in outputs of the stack ``<org>/<project>/<stack>`` named by a StackReference.

    ``hubEgressCidrs`` (infra.components.hub_readers): one /32 per NAT gateway of that stack
    file's hub region (natGateways single: one; perAz: one per availability zone), from the
    TEST-NET-2 documentation range 198.51.100.0/24 (RFC 5737), so no offline address is mistaken
    for a real one. A stack with no stack file in the checkout has no outputs.
    """
    stack = name.rsplit("/", 1)[-1]
    try:
        config = cfg.load_stack_file(stack)
    except (cfg.ConfigError, FileNotFoundError, OSError):
        return {}
    hub = config.region(config.hub_region)
    count = 1 if hub.nat_gateways == "single" else len(hub.availability_zones)
    return {naming.OUTPUT_HUB_EGRESS_CIDRS: [f"198.51.100.{i + 1}/32" for i in range(count)]}


def _h(*parts: str, n: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


class PlatformMocks(pulumi_mocks.Mocks):
    """Realistic outputs for the resource types the program declares.

    Every value is derived from the resource's own inputs and the account and region of its
    provider, so the same config always yields the same plan, and a different account or
    region yields different, consistent ARNs and URLs.
    """

    # What a resource declared without an explicit provider would get: obviously wrong values,
    # so the mistake shows in the plan (and the provider tests fail) instead of looking fine.
    NO_PROVIDER_ACCOUNT = "000000000000"
    NO_PROVIDER_REGION = "no-provider"

    def __init__(self) -> None:
        self.context: Resource | None = None
        self.plain_inputs: dict[str, Any] = {}
        self.providers: dict[str, dict[str, Any]] = {}

    # -- where a resource lives ---------------------------------------------------------------
    def _where(self, resource: Resource) -> tuple[str, str]:
        ref = resource.provider or resource.providers.get("aws")
        inputs = self.providers.get(ref or "", {})
        region = str(inputs.get("region") or self.NO_PROVIDER_REGION)
        accounts = inputs.get("allowedAccountIds") or [self.NO_PROVIDER_ACCOUNT]
        if isinstance(accounts, str):
            accounts = json.loads(accounts)
        return str(accounts[0]), region

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        raise NotImplementedError(
            f"the program called {args.token}; it must not depend on reading the live cloud"
        )

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        if args.typ == STACK_REFERENCE:
            # A read, not a registration (pulumi.StackReference passes id=<stack name>): no
            # backend offline, so the referenced stack's outputs are stand-ins.
            name = str(args.inputs.get("name") or args.resource_id)
            return name, {"name": name, "outputs": stack_reference_outputs(name), "secretOutputNames": []}
        resource = self.context
        assert resource is not None and resource.name == args.name
        inputs = dict(self.plain_inputs)
        if resource.is_provider:
            self.providers[resource.urn] = inputs
            return f"{args.name}-provider-id", inputs
        account, region = self._where(resource)
        builder = _OUTPUTS.get(args.typ)
        if builder is None and args.typ.startswith("kubernetes:"):
            builder = _k8s_object
        state: dict[str, Any] = dict(inputs)
        rid = f"{args.name}-{_h(resource.urn, n=8)}"
        if builder is not None:
            rid, extra = builder(args.name, inputs, account, region, resource.urn)
            state.update(extra)
        elif args.typ.startswith("aws:"):
            service = args.typ.split(":")[1].split("/")[0]
            state.setdefault("arn", f"arn:aws:{service}:{region}:{account}:{args.name}/{rid}")
        if args.typ.startswith("aws:") and "tags" in inputs:
            state["tagsAll"] = inputs["tags"]
        return rid, state


def _name(inputs: Mapping[str, Any], name: str) -> str:
    return str(inputs.get("name") or name)


def _vpc(name: str, i: Mapping[str, Any], account: str, region: str, urn: str) -> tuple[str, dict[str, Any]]:
    rid = f"vpc-{_h(urn)}"
    return rid, {"arn": f"arn:aws:ec2:{region}:{account}:vpc/{rid}", "ownerId": account}


def _prefixed(prefix: str, service: str, kind: str) -> Callable[..., tuple[str, dict[str, Any]]]:
    def build(
        name: str, i: Mapping[str, Any], account: str, region: str, urn: str
    ) -> tuple[str, dict[str, Any]]:
        rid = f"{prefix}-{_h(urn)}"
        return rid, {"arn": f"arn:aws:{service}:{region}:{account}:{kind}/{rid}"}

    return build


def _launch_template(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    rid = f"lt-{_h(urn)}"
    return rid, {
        "arn": f"arn:aws:ec2:{region}:{account}:launch-template/{rid}",
        "latestVersion": 1,
        "defaultVersion": 1,
    }


def _eip(name: str, i: Mapping[str, Any], account: str, region: str, urn: str) -> tuple[str, dict[str, Any]]:
    rid = f"eipalloc-{_h(urn)}"
    digest = hashlib.sha256(urn.encode()).digest()
    return rid, {
        "allocationId": rid,
        "arn": f"arn:aws:ec2:{region}:{account}:elastic-ip/{rid}",
        # Addresses from AWS's own ranges look real; derived from the URN, they are stable.
        "publicIp": f"52.{digest[0]}.{digest[1]}.{digest[2] or 1}",
    }


def _iam_role(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    role = _name(i, name)
    path = i.get("path") or "/"
    return role, {
        "name": role,
        "arn": f"arn:aws:iam::{account}:role{path}{role}",
        "uniqueId": "AROA" + _h(urn, n=17).upper(),
    }


def _iam_policy(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    policy = _name(i, name)
    arn = f"arn:aws:iam::{account}:policy/{policy}"
    return arn, {"name": policy, "arn": arn}


def _oidc(name: str, i: Mapping[str, Any], account: str, region: str, urn: str) -> tuple[str, dict[str, Any]]:
    host = str(i.get("url", "")).removeprefix("https://")
    arn = f"arn:aws:iam::{account}:oidc-provider/{host}"
    return arn, {"arn": arn}


def _kms(name: str, i: Mapping[str, Any], account: str, region: str, urn: str) -> tuple[str, dict[str, Any]]:
    h = hashlib.sha256(urn.encode()).hexdigest()
    key_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    return key_id, {"keyId": key_id, "arn": f"arn:aws:kms:{region}:{account}:key/{key_id}"}


def _kms_alias(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    alias = _name(i, name)
    return alias, {"arn": f"arn:aws:kms:{region}:{account}:{alias}"}


def _ecr_repo(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    repo = _name(i, name)
    return repo, {
        "name": repo,
        "arn": f"arn:aws:ecr:{region}:{account}:repository/{repo}",
        "registryId": account,
        "repositoryUrl": f"{account}.dkr.ecr.{region}.amazonaws.com/{repo}",
    }


def _registry_singleton(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    return account, {"registryId": account}


def _eks_cluster(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    cluster = _name(i, name)
    oidc_id = _h(urn, n=32).upper()
    endpoint = f"https://{oidc_id}.gr7.{region}.eks.amazonaws.com"
    ca = base64.b64encode(
        f"-----BEGIN CERTIFICATE-----\nmock CA of {cluster}\n-----END CERTIFICATE-----\n".encode()
    ).decode()
    issuer = f"https://oidc.eks.{region}.amazonaws.com/id/{oidc_id}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "kubernetes", "cluster": {"server": endpoint, "certificate-authority-data": ca}}
        ],
        "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
        "current-context": "aws",
        "users": [
            {
                "name": "aws",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", cluster, "--region", region],
                    }
                },
            }
        ],
    }
    return cluster, {
        "kubeconfig": kubeconfig,
        "kubeconfigJson": json.dumps(kubeconfig),
        "oidcIssuer": issuer.removeprefix("https://"),
        "oidcProviderUrl": issuer,
        "oidcProviderArn": f"arn:aws:iam::{account}:oidc-provider/{issuer.removeprefix('https://')}",
        "clusterSecurityGroupId": f"sg-{_h(urn, 'cluster')}",
        "nodeSecurityGroupId": f"sg-{_h(urn, 'node')}",
        # Not a pulumi-eks output: recorded so the plan shows what the real cluster would answer.
        "mockEndpoint": endpoint,
        "mockCertificateAuthority": ca,
    }


def _eks_child(kind: str) -> Callable[..., tuple[str, dict[str, Any]]]:
    def build(
        name: str, i: Mapping[str, Any], account: str, region: str, urn: str
    ) -> tuple[str, dict[str, Any]]:
        cluster = str(i.get("clusterName", "cluster"))
        rid = f"{cluster}:{_name(i, name)}"
        return rid, {
            "arn": f"arn:aws:eks:{region}:{account}:{kind}/{cluster}/{_name(i, name)}/{_h(urn, n=8)}"
        }

    return build


def _k8s_object(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    meta = i.get("metadata") or {}
    ns = meta.get("namespace")
    obj = meta.get("name") or name
    return (f"{ns}/{obj}" if ns else str(obj)), {}


def _helm_release(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    release = _name(i, name)
    ns = i.get("namespace", "default")
    return f"{ns}/{release}", {
        "status": {
            "name": release,
            "namespace": ns,
            "chart": i.get("chart"),
            "version": i.get("version"),
            "status": "deployed",
            "revision": 1,
        }
    }


def _acm_certificate(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    # ACM gives each domain name one validation CNAME per account, the same in every region
    # (https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html): derived from the
    # account and the name only.
    arn = f"arn:aws:acm:{region}:{account}:certificate/{_h(urn, n=32)}"
    names = [str(i.get("domainName")), *[str(n) for n in i.get("subjectAlternativeNames") or []]]
    options = [
        {
            "domainName": domain,
            "resourceRecordName": f"_{_h(account, domain, n=32)}.{domain}.",
            "resourceRecordType": "CNAME",
            "resourceRecordValue": f"_{_h(domain, account, n=32)}.acm-validations.aws.",
        }
        for domain in names
    ]
    return arn, {"arn": arn, "domainValidationOptions": options, "status": "PENDING_VALIDATION"}


def _route53_record(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    fqdn = str(i.get("name", name)).rstrip(".")
    return f"{i.get('zoneId')}_{fqdn}_{i.get('type')}", {"fqdn": fqdn}


def _health_check(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    rid = _h(urn, n=32)
    rid = f"{rid[:8]}-{rid[8:12]}-{rid[12:16]}-{rid[16:20]}-{rid[20:32]}"
    return rid, {"arn": f"arn:aws:route53:::healthcheck/{rid}"}


def _web_acl(
    name: str, i: Mapping[str, Any], account: str, region: str, urn: str
) -> tuple[str, dict[str, Any]]:
    rid = _h(urn, n=32)
    return rid, {"arn": f"arn:aws:wafv2:{region}:{account}:regional/webacl/{_name(i, name)}/{rid}"}


_OUTPUTS: dict[str, Callable[..., tuple[str, dict[str, Any]]]] = {
    "aws:acm/certificate:Certificate": _acm_certificate,
    "aws:route53/record:Record": _route53_record,
    "aws:route53/healthCheck:HealthCheck": _health_check,
    "aws:wafv2/webAcl:WebAcl": _web_acl,
    "aws:ec2/vpc:Vpc": _vpc,
    "aws:ec2/subnet:Subnet": _prefixed("subnet", "ec2", "subnet"),
    "aws:ec2/internetGateway:InternetGateway": _prefixed("igw", "ec2", "internet-gateway"),
    "aws:ec2/natGateway:NatGateway": _prefixed("nat", "ec2", "natgateway"),
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/routeTable:RouteTable": _prefixed("rtb", "ec2", "route-table"),
    "aws:ec2/securityGroup:SecurityGroup": _prefixed("sg", "ec2", "security-group"),
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _prefixed("vpce", "ec2", "vpc-endpoint"),
    "aws:iam/role:Role": _iam_role,
    "aws:iam/policy:Policy": _iam_policy,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _oidc,
    "aws:kms/key:Key": _kms,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:ecr/repository:Repository": _ecr_repo,
    "aws:ecr/replicationConfiguration:ReplicationConfiguration": _registry_singleton,
    "aws:ecr/registryPolicy:RegistryPolicy": _registry_singleton,
    "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration": _registry_singleton,
    "eks:index:Cluster": _eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _eks_child("nodegroup"),
    "aws:eks/addon:Addon": _eks_child("addon"),
    "aws:eks/accessEntry:AccessEntry": _eks_child("access-entry"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": _eks_child("podidentityassociation"),
    "kubernetes:helm.sh/v3:Release": _helm_release,
}


# ---------------------------------------------------------------------------------------------
# Running the program
# ---------------------------------------------------------------------------------------------


def run(
    stack: str,
    flat_config: Mapping[str, Any] | None = None,
    program: Callable[[cfg.StackConfig], Mapping[str, Any]] | None = None,
) -> Plan:
    """Run the program for ``stack`` under mocks and return everything it declared.

    ``flat_config`` is a stack file's ``config:`` map (YAML types); by default the stack file
    itself is read. Config errors surface as :class:`infra.config.ConfigError` before any
    resource is declared, exactly as under ``pulumi up``.
    """
    if flat_config is None:
        # Every problem of the stack file at once (a duplicate key and a bad value together),
        # each with its line, before the run: read_stack_file alone stops at the file's own.
        cfg.load_stack_file(stack)
    raw = dict(flat_config) if flat_config is not None else cfg.read_stack_file(cfg.stack_file(stack))
    return run_encoded(stack, cfg.as_pulumi_config(raw), program)


def run_encoded(
    stack: str,
    encoded: Mapping[str, str],
    program: Callable[[cfg.StackConfig], Mapping[str, Any]] | None = None,
    monitor_sink: list[RecordingMonitor] | None = None,
) -> Plan:
    """Run with config already encoded as the Pulumi CLI passes it (strings and JSON text).

    The config is read inside the run, by the same :func:`infra.config.load` the real entry
    point uses; a :class:`~infra.config.ConfigError` propagates before the program declares
    anything (``monitor_sink`` receives the monitor, so tests can check that nothing was).
    """
    pulumi.runtime.set_all_config(dict(encoded))
    mocks = PlatformMocks()
    monitor = RecordingMonitor(mocks)
    if monitor_sink is not None:
        monitor_sink.append(monitor)
    # A new root Stack resource per run: otherwise set_mocks keeps the first run's, and a second
    # stack's components would be parented to the first stack's URN.
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    settings = pulumi.runtime.settings.SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()

    if program is None:
        from infra import program as program_module

        program = program_module.run

    state: dict[str, Any] = {}

    def body() -> None:
        # The same two steps as infra/__main__.py: load (and validate) config, then declare.
        state["config"] = cfg.load()
        exported = program(state["config"])
        if exported:
            state["outputs"] = _collect(exported)

    # The SDK allocates many small objects per resource, and the collector's full passes over
    # the (large) generated SDK modules dominated the run: pause it for the run, collect once.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _sync_await(pulumi.runtime.stack.run_pulumi_func(body))
        resolved = _sync_await(state["outputs"]) if "outputs" in state else {}
    finally:
        if collecting:
            gc.enable()
    return Plan(stack=stack, config=state["config"], resources=list(monitor.recorded), outputs=resolved)


def _collect(exported: Mapping[str, Any]) -> Any:
    """Resolve stack outputs, keeping secrets marked."""

    async def resolve() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in sorted(exported):
            value = pulumi.Output.from_input(exported[key])
            plain = await value.future()
            secret = await value.is_secret()
            out[key] = SECRET_MARK if secret else plain
        return out

    return resolve()
