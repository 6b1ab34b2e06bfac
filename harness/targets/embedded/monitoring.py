"""Prometheus and Alertmanager configuration for the embedded stack: scrape the API every second,
alert rules whose `for:` suits a game day (seconds, not minutes), alerts delivered to a local
webhook receiver whose log the detection checks read."""
from __future__ import annotations

from harness.targets.embedded.layout import Layout

ALERT_FOR = "2s"
RPO_OBJECTIVE_S = 300  # BCP Key Objectives: RPO 5 minutes (bcp.yaml defaults.rpo_s; a test keeps them equal)
# SvgAiRpoAtRisk is an early warning: it must fire while there is still time to restore the way
# back, not once the recovery point is already too old. In normal operation the archive's exposure
# saws between 0 and archive_timeout (5 s) and the standby lags by well under a second, so an
# exposure of a tenth of the objective (30 s, six archive_timeouts) only happens when a way back
# has stopped keeping up; it leaves nine tenths of the objective (270 s) to act.
RPO_WARNING_FRACTION = 0.1
RPO_WARNING_S = RPO_OBJECTIVE_S * RPO_WARNING_FRACTION

RULES = f"""groups:
  - name: svg-ai
    interval: 1s
    rules:
      - alert: SvgAiApiDown
        expr: up{{job="svg-ai-api"}} == 0
        for: {ALERT_FOR}
        labels: {{severity: critical}}
        annotations: {{summary: "SVG AI API is not answering scrapes"}}
      - alert: SvgAiDatabaseDown
        expr: max(svg_ai_db_up) == 0
        for: {ALERT_FOR}
        labels: {{severity: critical}}
        annotations: {{summary: "SVG AI API cannot write to PostgreSQL"}}
      - alert: SvgAiHighErrorRate
        expr: sum(rate(svg_ai_requests_total{{status=~"5.."}}[10s])) / sum(rate(svg_ai_requests_total[10s])) > 0.05
        for: {ALERT_FOR}
        labels: {{severity: high}}
        annotations: {{summary: "More than 5 % of SVG AI requests fail"}}
      - alert: SvgAiModelChecksumMismatch
        expr: min(svg_ai_model_checksum_ok) == 0
        for: {ALERT_FOR}
        labels: {{severity: high}}
        annotations: {{summary: "A model artifact no longer matches its SHA-256 manifest (corrupted or missing)"}}
      - alert: SvgAiConfigDrift
        expr: min(svg_ai_config_checksum_ok) == 0
        for: {ALERT_FOR}
        labels: {{severity: high}}
        annotations: {{summary: "The configuration no longer matches its approved checksum"}}
      - alert: SvgAiRpoAtRisk
        expr: max by (way) (svg_ai_rpo_exposure_seconds) > {RPO_WARNING_S:g}
        for: {ALERT_FOR}
        labels: {{severity: high}}
        annotations: {{summary: "The newest restorable point of {{{{ $labels.way }}}} is older than {RPO_WARNING_S:g} s (RPO objective {RPO_OBJECTIVE_S} s)"}}
  - name: svg-ai-rpo
    interval: 1s
    rules:
      # 1 while a way back is beyond the RPO objective: avg_over_time of it is the share of time
      # spent above the objective (the quarterly evidence), exact to the evaluation interval.
      - record: svg_ai:rpo_exposure_above_objective:bool
        expr: svg_ai_rpo_exposure_seconds > bool {RPO_OBJECTIVE_S}
"""


def prometheus_config(layout: Layout) -> str:
    return f"""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - {layout.prometheus_dir / 'rules.yml'}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{layout.port('alertmanager')}']
scrape_configs:
  - job_name: svg-ai-api
    static_configs:
      - targets: ['127.0.0.1:{layout.port('api')}']
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:{layout.port('prometheus')}']
  - job_name: rpo-exporter
    static_configs:
      - targets: ['127.0.0.1:{layout.port('rpo-exporter')}']
"""


def alertmanager_config(receiver_url: str) -> str:
    """Every alert, firing and resolved, to the alert receiver at `receiver_url` at once."""
    return f"""route:
  receiver: gameday
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: gameday
    webhook_configs:
      - url: {receiver_url}
        send_resolved: true
"""


def write_configs(layout: Layout) -> None:
    layout.prometheus_dir.mkdir(parents=True, exist_ok=True)
    (layout.prometheus_dir / "data").mkdir(exist_ok=True)
    layout.alertmanager_dir.mkdir(parents=True, exist_ok=True)
    (layout.alertmanager_dir / "data").mkdir(exist_ok=True)
    (layout.prometheus_dir / "prometheus.yml").write_text(prometheus_config(layout))
    (layout.prometheus_dir / "rules.yml").write_text(RULES)
    (layout.alertmanager_dir / "alertmanager.yml").write_text(alertmanager_config(layout.url("alert-receiver", "/alerts")))
