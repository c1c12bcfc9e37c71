//! lincheck's integration tests, one binary: hand-made histories per workload, a
//! cross-check of the register checker against stateright's linearizability tester on
//! random small histories, and the performance check.

mod build;
mod crosscheck;
mod gen;
mod perf;
mod register;
mod workloads;
