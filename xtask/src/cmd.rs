//! One module per task.

pub(crate) mod app;
pub(crate) mod demo;
pub(crate) mod device;
pub(crate) mod factory;
pub(crate) mod flash;
pub(crate) mod ota;
pub(crate) mod qemu_test;
