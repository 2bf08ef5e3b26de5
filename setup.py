"""Maps the top-level folders onto the ``inferops.*`` namespace.

``instrumentation/`` is ``inferops.instrumentation``, ``processors/`` is
``inferops.processors`` and so on; ``inferops/`` holds the shared core. The
subpackages below each folder are found here so that adding one needs no
edit to the packaging metadata. Everything else lives in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

ROOTS = {
    "inferops": "inferops",
    "inferops.instrumentation": "instrumentation",
    "inferops.processors": "processors",
    "inferops.dashboards": "dashboards",
    "inferops.alerts": "alerts",
}

packages: list[str] = []
for package, folder in ROOTS.items():
    packages.append(package)
    packages.extend(f"{package}.{sub}" for sub in find_packages(folder))

setup(packages=packages, package_dir=dict(ROOTS))
