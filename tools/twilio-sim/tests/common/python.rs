//! The venv's Python, for tests that use the official `twilio` package as an oracle: the shared
//! crate's test support, so that there is one way to find it.

#![allow(unused_imports)]

pub use shared::test_support::{run_python_with_args, workspace_root};
