//! AI management-system evidence (ISO/IEC 42001): model registries, model cards and the
//! organisation's AI system inventory. The change history both model registries keep is
//! one piece, [`history`].

pub mod history;
pub mod inventory;
pub mod mlflow;
pub mod model_cards;
pub mod sagemaker;
