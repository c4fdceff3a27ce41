"""Guardrail: a Kubernetes validating admission webhook for network-security guardrails."""

__version__ = "0.1.0"
