//! camgate: a camera aggregation gateway for city video networks.
//!
//! The data path, and the modules along it:
//! `catalogue` (districts, checkpoints, cameras) is persisted by `store`
//! (SQLite or PostgreSQL) and served by `api` (REST under `/api/v1`).
//! `app` wires them together and owns start-up and shutdown.

pub mod api;
pub mod app;
pub mod auth;
pub mod catalogue;
pub mod config;
pub mod demo;
pub mod fanout;
pub mod health;
pub mod importer;
pub mod listen;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod pull;
pub mod relay;
#[cfg(feature = "gstreamer")]
pub mod simulator;
pub mod store;
pub mod tls;
