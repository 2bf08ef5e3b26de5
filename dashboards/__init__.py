"""Grafana dashboards as code (grafanalib): ``inferops dashboards build --out DIR``; see docs/dashboards.md."""
