//! The upstream budget: how many requests per second each project may send
//! to VBS, RPCs and job polls together, and how much of it the job hub plans for.

use super::*;

/// The upstream budget of each project.
#[derive(Debug, Args)]
pub(crate) struct BudgetArgs {
    /// Upstream requests per second per project, RPCs and job polls together
    /// (0 turns the budget off). Calls over it wait within their deadline,
    /// then fail RESOURCE_EXHAUSTED with RetryInfo.
    #[arg(long, env = "VBS_UPSTREAM_RATE", default_value = "10")]
    pub upstream_rate: f64,
    /// Upstream requests a project may send at once after a quiet spell.
    #[arg(long, env = "VBS_UPSTREAM_BURST", default_value = "20",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub upstream_burst: u32,
    /// Share of --upstream-rate the job hub plans its polls in (above 0, at
    /// most 1); the rest is left to RPCs.
    #[arg(long, env = "VBS_WATCH_BUDGET_SHARE", default_value = "0.5")]
    pub watch_budget_share: f64,
}

/// The upstream budget of each project.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Requests per second per project; None: no budget.
    pub rate: Option<f64>,
    /// Requests a project may send at once after a quiet spell.
    pub burst: u32,
    /// Share of the rate the job hub plans its polls in.
    pub watch_share: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            rate: Some(10.0),
            burst: 20,
            watch_share: 0.5,
        }
    }
}

impl BudgetConfig {
    /// No budget: every request goes at once (tests, and embedders that
    /// bound upstream use their own way).
    pub fn unlimited() -> BudgetConfig {
        BudgetConfig {
            rate: None,
            ..BudgetConfig::default()
        }
    }

    /// Polls per second per project the job hub may plan; None: unbounded.
    pub fn watch_poll_rate(&self) -> Option<f64> {
        self.rate.map(|rate| rate * self.watch_share)
    }
}

impl BudgetArgs {
    pub(super) fn to_config(&self) -> Result<BudgetConfig, ConfigError> {
        if !(self.upstream_rate.is_finite() && self.upstream_rate >= 0.0) {
            return Err(ConfigError::Budget(format!(
                "--upstream-rate {}: must be 0 (off) or more",
                self.upstream_rate
            )));
        }
        if !(self.watch_budget_share > 0.0 && self.watch_budget_share <= 1.0) {
            return Err(ConfigError::Budget(format!(
                "--watch-budget-share {}: must be above 0 and at most 1",
                self.watch_budget_share
            )));
        }
        Ok(BudgetConfig {
            rate: (self.upstream_rate > 0.0).then_some(self.upstream_rate),
            burst: self.upstream_burst,
            watch_share: self.watch_budget_share,
        })
    }
}
