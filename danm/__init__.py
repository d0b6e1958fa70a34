"""danm: Kubernetes network management for telco workloads (a re-implementation of Nokia DANM)."""

__version__ = "0.1.0"
