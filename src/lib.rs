pub mod proto;
pub mod rules;
