"""Pulumi's entry point (Pulumi.yaml: ``main: infra/``): load config, build, export."""

import pulumi

from infra import config, program

for _key, _value in program.run(config.load()).items():
    pulumi.export(_key, _value)
