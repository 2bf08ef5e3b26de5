"""Maps the top-level folders onto the ``inferops.*`` namespace.

``instrumentation/`` is ``inferops.instrumentation``, ``processors/`` is
``inferops.processors`` and so on; ``inferops/`` holds the shared core. The
subpackages below each folder are found here so that adding one needs no
edit to the packaging metadata. Everything else lives in ``pyproject.toml``.

``inferops serve``'s compiled fast path (``processors/serve/_otlpscan.c``) and
the instrumentation's stream chunk test (``instrumentation/providers/_chunkscan.c``)
are *optional* extensions: without a C compiler the install still succeeds and
both use their pure-Python equivalents.
"""

from setuptools import Extension, find_packages, setup

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

ext_modules = [
    Extension("inferops.processors.serve._otlpscan", ["processors/serve/_otlpscan.c"],
              extra_compile_args=["-O2"], optional=True),
    Extension("inferops.instrumentation.providers._chunkscan", ["instrumentation/providers/_chunkscan.c"],
              extra_compile_args=["-O2"], optional=True),
]

setup(packages=packages, package_dir=dict(ROOTS), ext_modules=ext_modules)
