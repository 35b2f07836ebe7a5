//! The risk gate: every action passes it before it is sent. Limits on position, order size and
//! open orders; halts that latch (drawdown, stale book, volatility, crossed book, book needing a
//! resync, or by hand) and leave only cancels — and reduce-only orders, if allowed — until reset.

use crate::error::{CoreError, CoreResult};
use crate::orders::OrderAction;
use crate::side::Side;

/// Why quoting stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HaltReason {
    /// Equity fell more than the drawdown limit from its peak.
    Drawdown,
    /// No book update within the stale-book time.
    StaleBook,
    /// Volatility above its limit.
    Volatility,
    /// The book is crossed.
    CrossedBook,
    /// The book saw a sequence gap and waits for a snapshot.
    BookResync,
    /// Stopped by the operator.
    Manual,
}

impl HaltReason {
    /// A short name for logs and the journal.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drawdown => "drawdown",
            Self::StaleBook => "stale_book",
            Self::Volatility => "volatility",
            Self::CrossedBook => "crossed_book",
            Self::BookResync => "book_resync",
            Self::Manual => "manual",
        }
    }
}

/// The limits. A limit of 0 (or less) is off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskLimits {
    /// Largest absolute position, base units.
    pub max_position: f64,
    /// Largest absolute position notional.
    pub max_position_notional: f64,
    /// Largest single order, base units.
    pub max_order_size: f64,
    /// Most open orders at once.
    pub max_open_orders: usize,
    /// Largest fall of equity from its peak, quote currency.
    pub max_drawdown: f64,
    /// Halt when the book has not updated for this long, milliseconds.
    pub stale_book_ms: f64,
    /// Halt when volatility (per √second) exceeds this.
    pub max_volatility: f64,
    /// While halted, still allow orders that only reduce the position.
    pub allow_reduce_only_when_halted: bool,
}

impl Default for RiskLimits {
    fn default() -> Self {
        Self {
            max_position: 0.0,
            max_position_notional: 0.0,
            max_order_size: 0.0,
            max_open_orders: 0,
            max_drawdown: 0.0,
            stale_book_ms: 5_000.0,
            max_volatility: 0.0,
            allow_reduce_only_when_halted: false,
        }
    }
}

impl RiskLimits {
    /// Checks the ranges.
    pub fn validate(&self) -> CoreResult<()> {
        for (name, value) in [
            ("max_position", self.max_position),
            ("max_position_notional", self.max_position_notional),
            ("max_order_size", self.max_order_size),
            ("max_drawdown", self.max_drawdown),
            ("stale_book_ms", self.stale_book_ms),
            ("max_volatility", self.max_volatility),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(CoreError::InvalidParameter(format!(
                    "risk.{name} must be finite and >= 0 (0 turns it off), got {value}"
                )));
            }
        }
        Ok(())
    }
}

/// The market and account state the gate checks.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RiskState {
    /// Now, nanoseconds.
    pub now_ns: i64,
    /// When the book last changed, nanoseconds (None: never).
    pub book_updated_ns: Option<i64>,
    /// Whether the book is crossed.
    pub book_crossed: bool,
    /// Whether the book needs a snapshot.
    pub book_needs_resync: bool,
    /// Volatility per √second.
    pub volatility: f64,
    /// Equity: balance plus unrealized PnL.
    pub equity: f64,
    /// Position (signed, base units).
    pub position: f64,
    /// Mid price (for notionals).
    pub mid: f64,
    /// Our open orders now.
    pub open_orders: usize,
}

/// Why an action was held back.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The action.
    pub action: OrderAction,
    /// Why.
    pub reason: String,
}

/// The risk gate of one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskGate {
    limits: RiskLimits,
    halt: Option<(HaltReason, String)>,
    peak_equity: Option<f64>,
}

impl RiskGate {
    /// A gate with these limits, not halted.
    pub fn new(limits: RiskLimits) -> CoreResult<Self> {
        limits.validate()?;
        Ok(Self {
            limits,
            halt: None,
            peak_equity: None,
        })
    }

    /// The limits.
    #[must_use]
    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    /// Changes the limits (a hot reload); a latched halt stays.
    pub fn set_limits(&mut self, limits: RiskLimits) -> CoreResult<()> {
        limits.validate()?;
        self.limits = limits;
        Ok(())
    }

    /// The latched halt, if any, with its detail.
    #[must_use]
    pub fn halt(&self) -> Option<(HaltReason, &str)> {
        self.halt
            .as_ref()
            .map(|(reason, detail)| (*reason, detail.as_str()))
    }

    /// Halts by hand.
    pub fn halt_now(&mut self, reason: HaltReason, detail: &str) -> bool {
        if self.halt.is_some() {
            return false;
        }
        self.halt = Some((reason, detail.to_owned()));
        true
    }

    /// Clears a halt (the operator's decision); the drawdown peak restarts from the next equity.
    pub fn reset(&mut self) {
        self.halt = None;
        self.peak_equity = None;
    }

    /// Checks the market and account; latches the first halt found. Returns the reason when a
    /// halt was latched by this call (the caller then cancels all orders).
    pub fn check(&mut self, state: &RiskState) -> Option<HaltReason> {
        if state.equity.is_finite() {
            self.peak_equity = Some(
                self.peak_equity
                    .map_or(state.equity, |peak| peak.max(state.equity)),
            );
        }
        if self.halt.is_some() {
            return None;
        }
        let limits = &self.limits;
        let found = if state.book_needs_resync {
            Some((
                HaltReason::BookResync,
                "the book saw a sequence gap and waits for a snapshot".to_owned(),
            ))
        } else if state.book_crossed {
            Some((HaltReason::CrossedBook, "the book is crossed".to_owned()))
        } else if limits.stale_book_ms > 0.0
            && state
                .book_updated_ns
                .is_none_or(|updated| (state.now_ns - updated) as f64 / 1e6 > limits.stale_book_ms)
        {
            Some((
                HaltReason::StaleBook,
                format!("no book update for more than {} ms", limits.stale_book_ms),
            ))
        } else if limits.max_volatility > 0.0 && state.volatility > limits.max_volatility {
            Some((
                HaltReason::Volatility,
                format!(
                    "volatility {} above {}",
                    state.volatility, limits.max_volatility
                ),
            ))
        } else if let Some(peak) = self
            .peak_equity
            .filter(|_| limits.max_drawdown > 0.0 && state.equity.is_finite())
        {
            (peak - state.equity > limits.max_drawdown).then(|| {
                (
                    HaltReason::Drawdown,
                    format!(
                        "equity {} is {} below its peak {peak}",
                        state.equity,
                        peak - state.equity
                    ),
                )
            })
        } else {
            None
        };
        let (reason, detail) = found?;
        self.halt = Some((reason, detail));
        Some(reason)
    }

    /// Splits actions into those that may be sent and those held back, in order. Cancels always
    /// pass. While halted only cancels (and reduce-only orders, if allowed) pass.
    #[must_use]
    pub fn filter(
        &self,
        actions: Vec<OrderAction>,
        state: &RiskState,
    ) -> (Vec<OrderAction>, Vec<Refusal>) {
        let limits = &self.limits;
        let mut allowed = Vec::with_capacity(actions.len());
        let mut refused = Vec::new();
        let mut open_orders = state.open_orders;
        // Worst-case position if every resting and new order on a side filled is not known
        // here; the gate bounds each order by the position it would make on its own.
        for action in actions {
            let verdict = match &action {
                OrderAction::Cancel { .. } => {
                    open_orders = open_orders.saturating_sub(1);
                    Ok(())
                }
                OrderAction::Place {
                    side, price, size, ..
                }
                | OrderAction::Amend {
                    side, price, size, ..
                } => {
                    let is_new = matches!(action, OrderAction::Place { .. });
                    let after = state.position + side.sign() * size;
                    // Reduces: smaller and not flipped (flat counts; f64::signum(0.0) is 1, so
                    // compare signs only when not flat).
                    let reduces = after.abs() < state.position.abs()
                        && (after == 0.0 || after.signum() == state.position.signum());
                    if let Some((reason, _)) = &self.halt {
                        if limits.allow_reduce_only_when_halted && reduces {
                            Ok(())
                        } else {
                            Err(format!("halted ({})", reason.as_str()))
                        }
                    } else if limits.max_order_size > 0.0 && *size > limits.max_order_size {
                        Err(format!(
                            "size {size} above max_order_size {}",
                            limits.max_order_size
                        ))
                    } else if limits.max_position > 0.0
                        && after.abs() > limits.max_position
                        && !reduces
                    {
                        Err(format!(
                            "position would reach {after}, above max_position {}",
                            limits.max_position
                        ))
                    } else if limits.max_position_notional > 0.0
                        && (after * price).abs() > limits.max_position_notional
                        && !reduces
                    {
                        Err(format!(
                            "position notional would reach {}, above max_position_notional {}",
                            (after * price).abs(),
                            limits.max_position_notional
                        ))
                    } else if is_new
                        && limits.max_open_orders > 0
                        && open_orders >= limits.max_open_orders
                    {
                        Err(format!(
                            "{open_orders} open orders, max_open_orders is {}",
                            limits.max_open_orders
                        ))
                    } else {
                        if is_new {
                            open_orders += 1;
                        }
                        Ok(())
                    }
                }
            };
            match verdict {
                Ok(()) => allowed.push(action),
                Err(reason) => refused.push(Refusal { action, reason }),
            }
        }
        (allowed, refused)
    }
}

/// The side that reduces a position (None when flat).
#[must_use]
pub fn reducing_side(position: f64) -> Option<Side> {
    if position > 0.0 {
        Some(Side::Sell)
    } else if position < 0.0 {
        Some(Side::Buy)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(side: Side, size: f64) -> OrderAction {
        OrderAction::Place {
            client_order_id: "x".into(),
            side,
            price: 100.0,
            size,
        }
    }

    fn cancel() -> OrderAction {
        OrderAction::Cancel {
            client_order_id: "c".into(),
            side: Side::Buy,
            price: 100.0,
        }
    }

    fn healthy(now_ns: i64) -> RiskState {
        RiskState {
            now_ns,
            book_updated_ns: Some(now_ns),
            equity: 1000.0,
            mid: 100.0,
            ..RiskState::default()
        }
    }

    #[test]
    fn limits_hold_orders_back() {
        let limits = RiskLimits {
            max_position: 2.0,
            max_order_size: 1.5,
            max_open_orders: 2,
            max_position_notional: 150.0,
            ..RiskLimits::default()
        };
        let gate = RiskGate::new(limits).unwrap();
        let state = RiskState {
            position: 1.0,
            open_orders: 1,
            ..healthy(0)
        };
        let (allowed, refused) = gate.filter(
            vec![
                place(Side::Buy, 2.0),
                place(Side::Buy, 1.0),
                place(Side::Sell, 1.0),
                place(Side::Sell, 1.0),
                cancel(),
            ],
            &state,
        );
        // 2.0 > max order size; buy 1 → position 2 = notional 200 > 150; the first sell reduces
        // and makes the second open order; the second sell would be a third.
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert_eq!(allowed.len(), 2);
        assert!(allowed.iter().any(OrderAction::is_cancel));
        assert!(refused[0].reason.contains("max_order_size"));
        assert!(refused[1].reason.contains("notional"));
        assert!(refused[2].reason.contains("max_open_orders"));
    }

    #[test]
    fn halts_latch_and_leave_only_cancels() {
        let mut gate = RiskGate::new(RiskLimits {
            max_drawdown: 50.0,
            max_volatility: 0.01,
            ..RiskLimits::default()
        })
        .unwrap();
        assert_eq!(gate.check(&healthy(0)), None);
        let stale = RiskState {
            now_ns: 6_000_000_000,
            book_updated_ns: Some(0),
            ..healthy(0)
        };
        assert_eq!(gate.check(&stale), Some(HaltReason::StaleBook));
        assert_eq!(
            gate.check(&healthy(7_000_000_000)),
            None,
            "latched: not reported twice"
        );
        assert_eq!(
            gate.halt().unwrap().0,
            HaltReason::StaleBook,
            "still halted when the book recovers"
        );
        let (allowed, refused) = gate.filter(vec![place(Side::Buy, 1.0), cancel()], &healthy(0));
        assert_eq!(allowed, vec![cancel()]);
        assert_eq!(refused.len(), 1);
        gate.reset();
        assert!(gate.halt().is_none());
        for (state, reason) in [
            (
                RiskState {
                    book_needs_resync: true,
                    ..healthy(0)
                },
                HaltReason::BookResync,
            ),
            (
                RiskState {
                    book_crossed: true,
                    ..healthy(0)
                },
                HaltReason::CrossedBook,
            ),
            (
                RiskState {
                    volatility: 0.02,
                    ..healthy(0)
                },
                HaltReason::Volatility,
            ),
        ] {
            gate.reset();
            assert_eq!(gate.check(&state), Some(reason));
        }
        gate.reset();
        gate.check(&RiskState {
            equity: 1100.0,
            ..healthy(0)
        });
        assert_eq!(
            gate.check(&RiskState {
                equity: 1060.0,
                ..healthy(0)
            }),
            None
        );
        assert_eq!(
            gate.check(&RiskState {
                equity: 1049.0,
                ..healthy(0)
            }),
            Some(HaltReason::Drawdown)
        );
    }

    #[test]
    fn reduce_only_while_halted_when_allowed() {
        let mut gate = RiskGate::new(RiskLimits {
            allow_reduce_only_when_halted: true,
            ..RiskLimits::default()
        })
        .unwrap();
        gate.halt_now(HaltReason::Manual, "operator");
        let state = RiskState {
            position: 2.0,
            ..healthy(0)
        };
        let (allowed, refused) = gate.filter(
            vec![
                place(Side::Sell, 1.0),
                place(Side::Buy, 1.0),
                place(Side::Sell, 3.0),
            ],
            &state,
        );
        assert_eq!(allowed, vec![place(Side::Sell, 1.0)]);
        assert_eq!(
            refused.len(),
            2,
            "buying adds; selling 3 flips the position"
        );
        assert_eq!(reducing_side(2.0), Some(Side::Sell));
        assert!(RiskGate::new(RiskLimits {
            max_drawdown: -1.0,
            ..RiskLimits::default()
        })
        .is_err());
    }
}
