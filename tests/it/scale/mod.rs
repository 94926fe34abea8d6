//! Proving the scale-out's moving parts (issue 14 §3): the roles' probes and the numbers an
//! autoscaler reads (`metrics`), and the Kubernetes manifests that use them (`k8s`).

mod k8s;
mod metrics;
mod probe;
