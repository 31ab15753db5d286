//! AI management-system evidence (ISO/IEC 42001): model registries, model cards and the
//! organisation's AI system inventory.

pub mod inventory;
pub mod mlflow;
pub mod model_cards;
