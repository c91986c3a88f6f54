"""Contract tests: every behaviour of an external system the platform relies on, one test each.

Nothing here can run Argo CD, Image Updater, pulumi-eks or AWS. Each test instead states one
upstream rule as the program relies on it (a small transcription of the upstream code or the
documented behaviour, in :mod:`tests.contracts.upstream` where it is shared), names its source in
the docstring (repository, file and tag, or the document's URL), and holds the program's pure
functions to it. The code comment at the place that relies on the rule names the same source.

When a pinned version moves (``infra/versions.py``), re-read every source named here at the new
version and update the transcription and the citation together; ``test_pinned_versions.py``
fails until the pins here and in ``infra/versions.py`` agree.
"""
