//! The camera catalogue: districts, checkpoints (卡口) and cameras, with the
//! validation rules and GB/T 28181 IDs they follow, and the CSV format used
//! for bulk import and export. Everything here is pure; `store/` persists it.

pub mod csv;
pub mod district;
pub mod gbid;
pub mod model;
pub mod validate;

pub use district::District;
pub use model::*;
pub use validate::{CameraInput, CheckpointInput, FieldError, Lookups};
