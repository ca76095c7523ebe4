"""mkdocs hooks: the installed package layout for griffe, and Sphinx roles shown as plain code.

The folders ``envs/`` and ``agents/`` install as ``pes_rl.envs`` and ``pes_rl.agents``
(pyproject.toml's package-dir), a mapping griffe's static finder cannot follow. ``on_config``
builds that layout out of symbolic links in ``.docs_layout/`` (``pes_rl/*.py``, ``pes_rl/envs``,
``pes_rl/agents``), where mkdocs.yml points mkdocstrings, so the API pages are read from the
source without importing it.

The docstrings cross-reference with Sphinx roles (:func:`train`, :class:`JaxEnv`), which are
readable in ``help()`` but which Markdown renders literally, as ``:func:`` followed by the code
span. The API pages drop the role and keep the code span, so the source docstrings stay as they are.
"""

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent
LAYOUT = ROOT / ".docs_layout"  # mkdocs.yml's mkdocstrings `paths`; git-ignored, rebuilt by every build
PACKAGE_DIRS = {"envs": "envs", "agents": "agents"}  # subpackage of pes_rl -> its folder in the tree


def installed_layout(scratch: Path) -> None:
    """``scratch/pes_rl`` as it is installed: pes_rl's files, and envs/ and agents/ inside it."""
    shutil.rmtree(scratch, ignore_errors=True)
    package = scratch / "pes_rl"
    package.mkdir(parents=True)
    for path in (ROOT / "pes_rl").glob("*.py"):
        (package / path.name).symlink_to(path)
    for name, folder in PACKAGE_DIRS.items():  # real folders of linked files: griffe's walk skips linked folders
        (package / name).mkdir()
        for path in (ROOT / folder).glob("*.py"):
            (package / name / path.name).symlink_to(path)


# At import, which comes before any plugin's on_config: mkdocstrings drops `paths` that do not
# exist when it sets up its handler, so the folder must be there first (a fresh clone has none).
installed_layout(LAYOUT)


def on_config(config):  # again for each rebuild of `mkdocs serve`, which may follow new files
    installed_layout(LAYOUT)
    return config


_ROLE = re.compile(r":(?:mod|class|func|meth|data|attr|obj|exc):(<code>)")


def on_page_content(html, page, config, files):
    return _ROLE.sub(r"\1", html)
