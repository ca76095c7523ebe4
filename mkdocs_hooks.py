"""mkdocs hook: show the Sphinx roles in the docstrings as plain code.

The docstrings cross-reference with Sphinx roles (:func:`train`, :class:`JaxEnv`), which are
readable in ``help()`` but which Markdown renders literally, as ``:func:`` followed by the code
span. The API pages drop the role and keep the code span, so the source docstrings stay as they are.
"""

import re

_ROLE = re.compile(r":(?:mod|class|func|meth|data|attr|obj|exc):(<code>)")


def on_page_content(html, page, config, files):
    return _ROLE.sub(r"\1", html)
