"""Transcription of the AWS CLI's output rules the backfill script relies on.

Kept apart from :mod:`tests.contracts.aws_rules` (which imports the offline engine): a fake
``aws`` executable imports it on every call of the script it serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

ECR_DESCRIBE_IMAGES_PAGE = 100  # DescribeImages without maxResults: "up to 100 results" (botocore ecr model)


def _cli_text(item: Any) -> str:
    """awscli/text.py ``format_text`` for the shapes the backfill reads: a scalar (``str``; None
    prints as "None"), a list of scalars (tab-separated on one line), a list of lists (one line each)."""
    if isinstance(item, list):
        if not item:
            return ""
        scalars = [e for e in item if not isinstance(e, list)]
        lines = ["\t".join(str(e) for e in scalars) + "\n"] if scalars else []
        return "".join(lines + [_cli_text(e) for e in item if isinstance(e, list)])
    return f"{item}\n"


def aws_cli_query_output(pages: Iterable[Mapping[str, Any]], query: str, output: str) -> str:
    """What ``aws ... --query QUERY --output OUTPUT`` prints for a paginated operation whose
    pages the service answered (aws/aws-cli awscli/formatter.py, tags 1.45.11 and 2.27.0):
    ``json`` is a FullyBufferedFormatter, which merges the pages (``build_full_result``) and then
    searches the whole result once; ``text`` (TextFormatter) searches each page as it comes and
    prints each result. "Filtering output in the AWS CLI":
    https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-filter.html. Only the one result
    key each page carries is merged (DescribeImages: ``imageDetails``, botocore's ecr paginator)."""
    import jmespath

    expression = jmespath.compile(query)
    pages = list(pages)
    if output == "json":
        merged: dict[str, list[Any]] = {}
        for page in pages:
            for key, value in page.items():
                merged.setdefault(key, []).extend(value)
        return json.dumps(expression.search(merged), indent=4) + "\n"
    if output == "text":
        return "".join(_cli_text(expression.search(page)) for page in pages)
    raise ValueError(f"output {output!r} is not transcribed")
