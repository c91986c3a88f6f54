"""The platform's CrossGuard policy pack (``pulumi preview --policy-pack policies``).

Rules live in one module per domain (``eks``, ``ecr``, ``iam``, ``gitops``, ``tagging``) as plain
functions over :class:`policies.engine.ResourceView`; ``policies.pack`` adapts them to
pulumi-policy and ``policies.offline`` to the offline plan. Importing this package imports
nothing else, so the offline adapter does not need pulumi-policy's server to start.
"""
