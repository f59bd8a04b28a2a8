"""How to install an optional dependency, said one way everywhere.

Never by the bare name `tinyllm` on a package index (that name belongs to another project):
the extra is installed from the tinyllm checkout, or the package itself by its own name.

>>> install_hint("matplotlib", "plot")
"pip install matplotlib (or, in the tinyllm checkout: pip install '.[plot]')"
"""


def install_hint(package: str, extra: str) -> str:
    """The command that installs `package`, directly or as tinyllm's extra `extra`."""
    return f"pip install {package} (or, in the tinyllm checkout: pip install '.[{extra}]')"
