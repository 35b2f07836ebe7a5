//! From a desired quote ladder and our live orders to the smallest set of order actions:
//! keep what is close enough, amend where the venue allows, cancel and place the rest; client
//! order ids unique per run and valid on both venues; venue-sized batches, cancels first; and the
//! rate limiter that paces them.

use crate::error::{CoreError, CoreResult};
use crate::quotes::{Quote, QuoteLadder};
use crate::side::Side;

/// The longest client order id both venues accept.
pub const MAX_CLIENT_ORDER_ID_LEN: usize = 36;

/// Makes client order ids: `<prefix><counter in base 36>`, `[A-Za-z0-9_-]`, at most 36 chars.
/// The prefix identifies the run, so orders left by an earlier run can be recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOrderIds {
    prefix: String,
    next: u64,
}

impl ClientOrderIds {
    /// Ids starting with `prefix` (1–22 chars of `[A-Za-z0-9_-]`, leaving room for the counter).
    pub fn new(prefix: &str) -> CoreResult<Self> {
        let valid = !prefix.is_empty()
            && prefix.len() <= 22
            && prefix
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
        if !valid {
            return Err(CoreError::InvalidParameter(format!(
                "client order id prefix {prefix:?} must be 1-22 chars of A-Z, a-z, 0-9, '_', '-'"
            )));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            next: 0,
        })
    }

    /// The prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether `client_order_id` was made with this prefix.
    #[must_use]
    pub fn is_ours(&self, client_order_id: &str) -> bool {
        client_order_id.starts_with(&self.prefix)
    }

    /// The next id.
    pub fn next_id(&mut self) -> String {
        const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut value = self.next;
        self.next = self.next.wrapping_add(1);
        let mut digits = [0_u8; 13];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = DIGITS[(value % 36) as usize];
            value /= 36;
            if value == 0 {
                break;
            }
        }
        let mut id = String::with_capacity(self.prefix.len() + digits.len() - start);
        id.push_str(&self.prefix);
        id.extend(digits[start..].iter().map(|byte| char::from(*byte)));
        id
    }
}

/// One of our orders resting at the venue, as the diff sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveOrder {
    /// Its client order id.
    pub client_order_id: String,
    /// Buy or sell.
    pub side: Side,
    /// Limit price.
    pub price: f64,
    /// Size still open.
    pub size: f64,
}

/// One thing to send to the venue.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderAction {
    /// Cancel this order.
    Cancel {
        /// Its client order id.
        client_order_id: String,
        /// Its side.
        side: Side,
        /// Its price.
        price: f64,
    },
    /// Change this order's price and size in place (venues that support it).
    Amend {
        /// Its client order id.
        client_order_id: String,
        /// Its side.
        side: Side,
        /// The new price.
        price: f64,
        /// The new size.
        size: f64,
    },
    /// Place a new post-only limit order.
    Place {
        /// A fresh client order id.
        client_order_id: String,
        /// Buy or sell.
        side: Side,
        /// Limit price.
        price: f64,
        /// Size.
        size: f64,
    },
}

impl OrderAction {
    /// Whether this is a cancel (cancels go first and are never held back by risk).
    #[must_use]
    pub fn is_cancel(&self) -> bool {
        matches!(self, Self::Cancel { .. })
    }

    /// The order's side.
    #[must_use]
    pub fn side(&self) -> Side {
        match self {
            Self::Cancel { side, .. } | Self::Amend { side, .. } | Self::Place { side, .. } => {
                *side
            }
        }
    }
}

/// How the diff decides what is close enough.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffRules {
    /// A live order within this many bps of a desired price is kept.
    pub requote_tolerance_bps: f64,
    /// ... if its size is also within this fraction of the desired size.
    pub size_tolerance: f64,
    /// Whether the venue can amend price and size in place.
    pub supports_amend: bool,
}

impl Default for DiffRules {
    fn default() -> Self {
        Self {
            requote_tolerance_bps: 1.0,
            size_tolerance: 0.25,
            supports_amend: false,
        }
    }
}

impl DiffRules {
    /// Checks the ranges.
    pub fn validate(&self) -> CoreResult<()> {
        if !(self.requote_tolerance_bps.is_finite() && self.requote_tolerance_bps >= 0.0) {
            return Err(CoreError::InvalidParameter(format!(
                "requote_tolerance_bps must be finite and >= 0, got {}",
                self.requote_tolerance_bps
            )));
        }
        if !(self.size_tolerance.is_finite() && self.size_tolerance >= 0.0) {
            return Err(CoreError::InvalidParameter(format!(
                "size_tolerance must be finite and >= 0, got {}",
                self.size_tolerance
            )));
        }
        Ok(())
    }
}

#[inline]
fn close_enough(price: f64, size: f64, want: &Quote, rules: &DiffRules) -> bool {
    price_close_enough(price, want, rules) && size_close_enough(size, want, rules)
}

/// The price half of [`close_enough`]. Over prices sorted away from `want` it holds for a run
/// and then fails for good (every step is a monotone float operation).
#[inline]
fn price_close_enough(price: f64, want: &Quote, rules: &DiffRules) -> bool {
    let price_bps = (price - want.price).abs() / want.price * 1e4;
    price_bps <= rules.requote_tolerance_bps + 1e-9
}

/// The size half of [`close_enough`].
#[inline]
fn size_close_enough(size: f64, want: &Quote, rules: &DiffRules) -> bool {
    let size_fraction = (size - want.size).abs() / want.size;
    size_fraction <= rules.size_tolerance + 1e-12
}

/// Same price to well within a tick (prices on one grid differ by at least a tick).
#[inline]
fn same_price(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// The actions that turn `live` into `desired`: keep, then amend (if supported), cancel, place.
/// After them no two of our orders rest at one price and side.
///
/// Every per-order fact the matching needs (is it on some wanted price, is it close enough to
/// each wanted level) is worked out once per side, so a tick against a steady ladder costs a
/// few dozen comparisons and no action.
pub fn diff(
    desired: &QuoteLadder,
    live: &[LiveOrder],
    rules: &DiffRules,
    ids: &mut ClientOrderIds,
) -> Vec<OrderAction> {
    diff_with(desired, live, rules, ids, &mut DiffScratch::default())
}

/// One of our orders on the side being diffed: its price and size copied next to each other,
/// so the matching loops read them without going through `live`.
#[derive(Debug, Clone, Copy)]
struct SideOrder {
    price: f64,
    size: f64,
    /// Its index in `live`.
    live: usize,
}

/// The working lists of [`diff_with`], kept between calls so that a steady tick allocates only
/// for the actions it returns.
#[derive(Debug, Default, Clone)]
pub struct DiffScratch {
    /// One side's orders, duplicates left out, by price.
    orders: Vec<SideOrder>,
    kept: Vec<bool>,
    on_wanted_price: Vec<bool>,
    satisfied: Vec<bool>,
    resting: Vec<f64>,
    /// Indices into `orders`.
    spare: Vec<usize>,
    /// For each wanted level, the first of `orders` at or above its price.
    first_at_or_above: Vec<usize>,
    amends: Vec<OrderAction>,
    places: Vec<OrderAction>,
}

/// One side's live orders into `orders`, flat and sorted by price: so that the diff's matching
/// (ties between equally near orders, the choice of a spare to amend) does not depend on the
/// order the live orders came in — the same orders in any order give the same actions, and
/// diffing the result again gives none. (A stable sort: orders at one price keep their order.)
fn read_side(live: &[LiveOrder], side: Side, orders: &mut Vec<SideOrder>) {
    orders.clear();
    orders.extend(
        live.iter()
            .enumerate()
            .filter(|(_, order)| order.side == side)
            .map(|(index, order)| SideOrder {
                price: order.price,
                size: order.size,
                live: index,
            }),
    );
    sort_by_price(orders);
}

/// [`diff`] with its working lists in `scratch` (same result).
#[allow(clippy::too_many_lines)] // one pass per side: duplicates, exact, nearest, amend/place, cancel
pub fn diff_with(
    desired: &QuoteLadder,
    live: &[LiveOrder],
    rules: &DiffRules,
    ids: &mut ClientOrderIds,
    scratch: &mut DiffScratch,
) -> Vec<OrderAction> {
    let mut cancels = Vec::new();
    let DiffScratch {
        orders,
        kept,
        on_wanted_price,
        satisfied,
        resting,
        spare,
        first_at_or_above,
        amends,
        places,
    } = scratch;
    amends.clear();
    places.clear();
    for (side, wanted) in [(Side::Buy, &desired.bids), (Side::Sell, &desired.asks)] {
        read_side(live, side, orders);
        // Every order still serving its own level (the usual tick): nothing to send.
        if each_order_serves_its_level(orders, wanted, side, rules) {
            continue;
        }
        let apart = prices_apart(orders, wanted, side, on_wanted_price, first_at_or_above);
        if !apart {
            // Two orders at one price (or prices within `same_price`'s tolerance that are not
            // equal): the second at a price we already hold is always cancelled, in the order
            // they came in.
            orders.clear();
            for (index, order) in live.iter().enumerate() {
                if order.side != side {
                    continue;
                }
                // A second order at a price we already hold is always cancelled.
                if orders
                    .iter()
                    .any(|held| same_price(held.price, order.price))
                {
                    cancels.push(OrderAction::Cancel {
                        client_order_id: order.client_order_id.clone(),
                        side,
                        price: order.price,
                    });
                } else {
                    orders.push(SideOrder {
                        price: order.price,
                        size: order.size,
                        live: index,
                    });
                }
            }
            sort_by_price(orders);
        }
        let orders = &orders[..];
        if apart {
            kept.clear();
            kept.resize(orders.len(), false);
            satisfied.clear();
            satisfied.resize(wanted.len(), false);
            match_prices_apart(
                orders,
                wanted,
                rules,
                kept,
                satisfied,
                on_wanted_price,
                first_at_or_above,
            );
            // Every level served and every order kept (the usual tick): nothing to send.
            if satisfied.iter().all(|done| *done) && kept.iter().all(|kept| *kept) {
                continue;
            }
        } else {
            if kept_as_is(orders, wanted, side, rules) {
                continue;
            }
            kept.clear();
            kept.resize(orders.len(), false);
            on_wanted_price.clear();
            on_wanted_price.extend(orders.iter().map(|order| {
                wanted
                    .iter()
                    .any(|want| same_price(want.price, order.price))
            }));
            satisfied.clear();
            satisfied.resize(wanted.len(), false);
            // Exact prices first: at most one order per price is left, so the first match is it.
            // Only an order on some wanted price can be at this one.
            for (want, done) in wanted.iter().zip(satisfied.iter_mut()) {
                if let Some(o) = (0..orders.len()).find(|&o| {
                    on_wanted_price[o]
                        && !kept[o]
                        && same_price(orders[o].price, want.price)
                        && close_enough(orders[o].price, orders[o].size, want, rules)
                }) {
                    kept[o] = true;
                    *done = true;
                }
            }
            // Then the nearest within tolerance. An order resting on another wanted price serves
            // that level or none: it must not block it by serving a neighbour.
            if satisfied.iter().any(|done| !done) {
                for (want, done) in wanted.iter().zip(satisfied.iter_mut()) {
                    if *done {
                        continue;
                    }
                    let mut best: Option<(usize, f64)> = None;
                    for (o, order) in orders.iter().enumerate() {
                        if kept[o]
                            || on_wanted_price[o]
                            || !close_enough(order.price, order.size, want, rules)
                        {
                            continue;
                        }
                        // The first of equally near orders, as `min_by` picks.
                        let distance = (order.price - want.price).abs();
                        if best.is_none_or(|(_, nearest)| distance.total_cmp(&nearest).is_lt()) {
                            best = Some((o, distance));
                        }
                    }
                    if let Some((o, _)) = best {
                        kept[o] = true;
                        *done = true;
                    }
                }
            }
        }
        resting.clear();
        spare.clear();
        for (o, order) in orders.iter().enumerate() {
            if kept[o] {
                resting.push(order.price);
            } else {
                spare.push(o);
            }
        }
        for (want, done) in wanted.iter().zip(satisfied.iter()) {
            if *done || resting.iter().any(|price| same_price(*price, want.price)) {
                continue;
            }
            // Amend a spare order (one that is not already at this price) rather than cancel + place.
            if rules.supports_amend {
                let same = spare
                    .iter()
                    .position(|&o| same_price(orders[o].price, want.price));
                // Prefer a spare at this price (a size change), then one not on another wanted
                // price (that level may still want it), then any.
                let elsewhere = || spare.iter().position(|&o| !on_wanted_price[o]);
                if let Some(position) = same
                    .or_else(elsewhere)
                    .or_else(|| (!spare.is_empty()).then_some(0))
                {
                    let order = &live[orders[spare.remove(position)].live];
                    amends.push(OrderAction::Amend {
                        client_order_id: order.client_order_id.clone(),
                        side,
                        price: want.price,
                        size: want.size,
                    });
                    resting.push(want.price);
                    continue;
                }
            }
            places.push(OrderAction::Place {
                client_order_id: ids.next_id(),
                side,
                price: want.price,
                size: want.size,
            });
            resting.push(want.price);
        }
        for &o in spare.iter() {
            cancels.push(OrderAction::Cancel {
                client_order_id: live[orders[o].live].client_order_id.clone(),
                side,
                price: orders[o].price,
            });
        }
    }
    cancels.append(amends);
    cancels.append(places);
    cancels
}

/// Sorts one side's orders by price as a stable sort would, without sorting when they came
/// in by price already (rising, or falling with no two at one price): the live orders of a
/// side usually come in the order their levels were placed.
fn sort_by_price(orders: &mut [SideOrder]) {
    let rising = orders
        .windows(2)
        .all(|pair| pair[0].price.total_cmp(&pair[1].price).is_le());
    if rising {
        return;
    }
    let falling = orders
        .windows(2)
        .all(|pair| pair[0].price.total_cmp(&pair[1].price).is_gt());
    if falling {
        orders.reverse();
    } else {
        orders.sort_by(|a, b| a.price.total_cmp(&b.price));
    }
}

/// Whether this side's orders (sorted by price) are one per wanted level and the matching of
/// [`diff_with`] would keep each for its own level, so that nothing is sent: the orders and the
/// levels paired from the lowest price up, and for each pair
/// - the order within tolerance (price and size) of its level;
/// - the order strictly between the neighbouring levels, and further than `same_price`'s
///   tolerance from them and from the order below: no order is on another level's price
///   (the exact pass takes each order for its own level or for none) and no two orders are one
///   price (no duplicate to cancel);
/// - each neighbouring order (the one below is under this level, the one above over it)
///   either not within price tolerance of the level or further from it than the level's own
///   order (the one above may be as far: ties go to the lower price). Orders past the
///   neighbours are further still (the distance grows with the order's distance on either
///   side), so the nearest pass, whichever level it takes first, finds each level's own order
///   nearest among the orders left.
///
/// This one pass, without allocating, stands in for the matching on the usual tick, when the
/// ladder has moved by less than the tolerance (the levels of a tight ladder may be within
/// tolerance of their neighbours' orders). Anything else (a level moved out of tolerance, a
/// size changed, an order gone, doubled or stray, an order nearer another level) takes the
/// full matching.
fn each_order_serves_its_level(
    orders: &[SideOrder],
    wanted: &[Quote],
    side: Side,
    rules: &DiffRules,
) -> bool {
    let levels = wanted.len();
    if orders.len() != levels {
        return false;
    }
    let (Some(highest_order), Some(highest_level)) = (orders.last(), levels.checked_sub(1)) else {
        // No order and no level: nothing to do.
        return true;
    };
    // The wanted levels from the lowest price up (bids come best, highest, first), to pair
    // with the orders sorted by price.
    let ascending = |index: usize| match side {
        Side::Buy => &wanted[levels - 1 - index],
        Side::Sell => &wanted[index],
    };
    // Two of these prices further apart than this are not one price for `same_price` (its
    // allowance is at most this, and float subtraction is monotone).
    let one_price_within = 1e-9 * highest_order.price.max(ascending(highest_level).price);
    if !one_price_within.is_finite() {
        return false;
    }
    (0..levels).all(|index| {
        let order = &orders[index];
        let want = ascending(index);
        let distance = (order.price - want.price).abs();
        // A level at a price of zero or below would call every order near.
        let own = want.price > 0.0
            && order.price > 0.0
            && close_enough(order.price, order.size, want, rules);
        if !own {
            return false;
        }
        let below = index.checked_sub(1).is_none_or(|below| {
            let (order_below, level_below) = (&orders[below], ascending(below));
            level_below.price < want.price
                && order.price - level_below.price > one_price_within
                && order.price - order_below.price > one_price_within
                && ((order_below.price - want.price).abs() > distance
                    || !price_close_enough(order_below.price, want, rules))
        });
        below
            && orders.get(index + 1).is_none_or(|order_above| {
                ascending(index + 1).price - order.price > one_price_within
                    && ((order_above.price - want.price).abs() >= distance
                        || !price_close_enough(order_above.price, want, rules))
            })
    })
}

/// Whether this side's orders (sorted by price) and wanted prices are positive, finite and
/// either equal or clearly apart: no two orders at one price, the wanted levels strictly
/// monotone (bids falling, asks rising), and any two of all these prices equal or further apart
/// than `same_price`'s tolerance at the highest of them. Then `same_price` is plain equality
/// between any two of them, and [`match_prices_apart`] can match by walking both lists once.
///
/// On the way it finds, for [`match_prices_apart`], which orders are on a wanted price and the
/// first order at or above each wanted price (meaningless when it returns false).
fn prices_apart(
    orders: &[SideOrder],
    wanted: &[Quote],
    side: Side,
    on_wanted_price: &mut Vec<bool>,
    first_at_or_above: &mut Vec<usize>,
) -> bool {
    let levels = wanted.len();
    let ascending = |index: usize| match side {
        Side::Buy => wanted[levels - 1 - index].price,
        Side::Sell => wanted[index].price,
    };
    let highest_order = orders.last().map_or(0.0, |order| order.price);
    let highest_wanted = levels.checked_sub(1).map_or(0.0, ascending);
    let highest = highest_order.max(highest_wanted);
    if !highest.is_finite() {
        return false;
    }
    // `same_price(a, b)` allows `1e-9 × max(|a|, |b|)`, at most this for any two of these
    // prices; float subtraction is monotone, so pairs further apart than neighbours are too.
    let tolerance = 1e-9 * highest;
    let rising = |below: f64, above: f64| above - below > tolerance;
    if orders
        .windows(2)
        .any(|pair| !rising(pair[0].price, pair[1].price))
        || (1..levels).any(|index| !rising(ascending(index - 1), ascending(index)))
    {
        return false;
    }
    on_wanted_price.clear();
    on_wanted_price.resize(orders.len(), false);
    first_at_or_above.clear();
    first_at_or_above.resize(levels, 0);
    // Both lists merged: neighbours from the two lists are equal or apart.
    let (mut o, mut w) = (0, 0);
    let mut below = f64::NAN;
    while o < orders.len() || w < levels {
        let price = if w == levels || (o < orders.len() && orders[o].price <= ascending(w)) {
            o += 1;
            orders[o - 1].price
        } else {
            // Every order up to this wanted price is behind: the one just behind, if equal,
            // is the first at or above it.
            let price = ascending(w);
            let level = match side {
                Side::Buy => levels - 1 - w,
                Side::Sell => w,
            };
            first_at_or_above[level] = if o > 0 && orders[o - 1].price == price {
                on_wanted_price[o - 1] = true;
                o - 1
            } else {
                o
            };
            w += 1;
            price
        };
        if below.is_nan() {
            // Also false for NaN.
            if price.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return false;
            }
        } else if !(price == below || rising(below, price)) {
            return false;
        }
        below = price;
    }
    true
}

/// The exact and nearest passes of [`diff_with`] for prices that [`prices_apart`] accepted,
/// where `same_price` is equality: each wanted price's order (if any) was found by its one walk
/// over both sorted lists, and the nearest order within tolerance by looking outward from where the
/// wanted price falls among the orders, only as far as the price stays within tolerance. Fills
/// `kept`, `on_wanted_price` and `satisfied` exactly as the general passes do.
#[allow(clippy::too_many_arguments)]
fn match_prices_apart(
    orders: &[SideOrder],
    wanted: &[Quote],
    rules: &DiffRules,
    kept: &mut [bool],
    satisfied: &mut [bool],
    on_wanted_price: &[bool],
    first_at_or_above: &[usize],
) {
    // Exact prices first: the one order at this price, if it is close enough. (No other level
    // wants this price, so nothing kept it before.)
    for (level, want) in wanted.iter().enumerate() {
        let o = first_at_or_above[level];
        if o < orders.len()
            && orders[o].price == want.price
            && close_enough(orders[o].price, orders[o].size, want, rules)
        {
            kept[o] = true;
            satisfied[level] = true;
        }
    }
    // Then the nearest within tolerance, the lowest-priced of equally near ones, among orders
    // not kept and not on another wanted price.
    for (level, want) in wanted.iter().enumerate() {
        if satisfied[level] {
            continue;
        }
        let start = first_at_or_above[level];
        let mut best: Option<(usize, f64)> = None;
        let consider = |o: usize, best: &mut Option<(usize, f64)>| {
            let order = &orders[o];
            if kept[o] || on_wanted_price[o] || !size_close_enough(order.size, want, rules) {
                return;
            }
            let distance = (order.price - want.price).abs();
            if best.is_none_or(|(nearest_o, nearest)| {
                distance < nearest || (distance == nearest && o < nearest_o)
            }) {
                *best = Some((o, distance));
            }
        };
        for o in (0..start).rev() {
            if !price_close_enough(orders[o].price, want, rules) {
                break;
            }
            consider(o, &mut best);
        }
        for (o, order) in orders.iter().enumerate().skip(start) {
            if !price_close_enough(order.price, want, rules) {
                break;
            }
            consider(o, &mut best);
        }
        if let Some((o, _)) = best {
            kept[o] = true;
            satisfied[level] = true;
        }
    }
}

/// Whether this side's orders (sorted by price, no two at one price) already are the wanted
/// levels: one order exactly at each wanted (finite) price and close enough to it, none left
/// over. Then the matching of [`diff_with`] keeps every order and sends nothing — each order is
/// at its own level's price and, as no two orders are at one price, at no other level's — so
/// this one pass stands in for it on the common tick. Anything else (a level moved, a size
/// changed, a stray or doubled order) takes the full matching.
fn kept_as_is(orders: &[SideOrder], wanted: &[Quote], side: Side, rules: &DiffRules) -> bool {
    let levels = wanted.len();
    if orders.len() != levels {
        return false;
    }
    // The wanted levels from the lowest price up (bids come best, highest, first), to pair
    // with the orders sorted by price.
    let ascending = |index: usize| match side {
        Side::Buy => &wanted[levels - 1 - index],
        Side::Sell => &wanted[index],
    };
    orders.iter().enumerate().all(|(index, order)| {
        let want = ascending(index);
        order.price == want.price
            && want.price.is_finite()
            && close_enough(order.price, order.size, want, rules)
    })
}

/// Splits actions into venue-sized batches of one kind each (Binance 5, Bybit 10), cancels
/// first, then amends, then places.
#[must_use]
pub fn batches(actions: &[OrderAction], batch_size: usize) -> Vec<Vec<OrderAction>> {
    let batch_size = batch_size.max(1);
    let mut out = Vec::new();
    for kind in 0..3 {
        let group: Vec<OrderAction> = actions
            .iter()
            .filter(|action| {
                matches!(
                    (kind, action),
                    (0, OrderAction::Cancel { .. })
                        | (1, OrderAction::Amend { .. })
                        | (2, OrderAction::Place { .. })
                )
            })
            .cloned()
            .collect();
        out.extend(group.chunks(batch_size).map(<[OrderAction]>::to_vec));
    }
    out
}

/// A token bucket: `capacity` tokens, refilled at `refill_per_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    refill_per_s: f64,
    last_ns: Option<i64>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: f64, refill_per_s: f64) -> CoreResult<Self> {
        if !(capacity.is_finite()
            && capacity > 0.0
            && refill_per_s.is_finite()
            && refill_per_s > 0.0)
        {
            return Err(CoreError::InvalidParameter(format!(
                "a rate limit needs a positive capacity and refill rate, got {capacity} and {refill_per_s}/s"
            )));
        }
        Ok(Self {
            capacity,
            tokens: capacity,
            refill_per_s,
            last_ns: None,
        })
    }

    fn refill(&mut self, now_ns: i64) {
        if let Some(last) = self.last_ns {
            let elapsed = (now_ns - last).max(0) as f64 / 1e9;
            self.tokens = (self.tokens + elapsed * self.refill_per_s).min(self.capacity);
        }
        self.last_ns = Some(self.last_ns.map_or(now_ns, |last| last.max(now_ns)));
    }

    /// Tokens available now.
    pub fn available(&mut self, now_ns: i64) -> f64 {
        self.refill(now_ns);
        self.tokens
    }

    /// Takes `cost` tokens if at least `cost + keep` are there.
    pub fn try_take(&mut self, now_ns: i64, cost: f64, keep: f64) -> bool {
        self.refill(now_ns);
        if self.tokens + 1e-9 >= cost + keep {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Sets the tokens from what the venue says was used (e.g. `X-MBX-USED-WEIGHT-1M`).
    pub fn observe_used(&mut self, now_ns: i64, used: f64) {
        self.refill(now_ns);
        self.tokens = self.tokens.min((self.capacity - used).max(0.0));
    }

    /// The capacity.
    #[must_use]
    pub fn capacity(&self) -> f64 {
        self.capacity
    }
}

/// Binance's order limit per minute (USDⓈ-M futures), the rate limiter's default.
pub const DEFAULT_ORDERS_PER_MINUTE: f64 = 1200.0;

/// Paces order traffic: batch calls per second (the seed's `rate_limit`), the venue's request
/// weight and its order counts per 10 seconds and per minute. New orders may not use the last
/// `cancel_reserve` share of any bucket, so cancels always get through first.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimiter {
    calls: TokenBucket,
    weight: TokenBucket,
    orders: TokenBucket,
    orders_per_minute: TokenBucket,
    cancel_reserve: f64,
    /// Until when the venue told us to stop (429/418), nanoseconds.
    blocked_until_ns: i64,
}

/// What the rate limiter is asked to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// A batch of cancels.
    Cancels,
    /// A batch of new or amended orders.
    Orders,
}

impl RateLimiter {
    /// `calls_per_s` batch calls per second; `weight_per_min` request weight per minute;
    /// `orders_per_10s` orders per 10 seconds (Binance: 2400/min weight, 300 orders/10 s).
    pub fn new(
        calls_per_s: f64,
        weight_per_min: f64,
        orders_per_10s: f64,
        cancel_reserve: f64,
    ) -> CoreResult<Self> {
        if !(0.0..1.0).contains(&cancel_reserve) {
            return Err(CoreError::InvalidParameter(format!(
                "cancel_reserve must be in [0, 1), got {cancel_reserve}"
            )));
        }
        Ok(Self {
            // A call costs one token, so the bucket holds at least one even below 1 call/s.
            calls: TokenBucket::new(calls_per_s.max(1.0), calls_per_s)?,
            weight: TokenBucket::new(weight_per_min, weight_per_min / 60.0)?,
            orders: TokenBucket::new(orders_per_10s, orders_per_10s / 10.0)?,
            orders_per_minute: TokenBucket::new(
                DEFAULT_ORDERS_PER_MINUTE,
                DEFAULT_ORDERS_PER_MINUTE / 60.0,
            )?,
            cancel_reserve,
            blocked_until_ns: i64::MIN,
        })
    }

    /// The venue's order limit per minute (Binance: 1,200; the default), in place of the
    /// default.
    pub fn with_orders_per_minute(mut self, orders_per_minute: f64) -> CoreResult<Self> {
        self.orders_per_minute = TokenBucket::new(orders_per_minute, orders_per_minute / 60.0)?;
        Ok(self)
    }

    /// Asks to send one batch call of `orders` orders costing `weight`; takes the tokens and
    /// returns true if it may go now. The call counts `orders` against the per-minute order
    /// limit too (see [`RateLimiter::try_send_counted`] where the venue counts it otherwise).
    pub fn try_send(&mut self, now_ns: i64, traffic: Traffic, orders: u32, weight: f64) -> bool {
        self.try_send_counted(now_ns, traffic, orders, orders, weight)
    }

    /// As [`RateLimiter::try_send`], for a call the venue counts as `orders_per_minute` orders
    /// against its per-minute limit (Binance: a `batchOrders` request counts its orders per 10
    /// seconds but one per minute; a websocket API `order.place` counts one in each).
    pub fn try_send_counted(
        &mut self,
        now_ns: i64,
        traffic: Traffic,
        orders: u32,
        orders_per_minute: u32,
        weight: f64,
    ) -> bool {
        if now_ns < self.blocked_until_ns {
            return false;
        }
        let reserve = |bucket: &TokenBucket| match traffic {
            Traffic::Cancels => 0.0,
            Traffic::Orders => bucket.capacity() * self.cancel_reserve,
        };
        let (calls_keep, weight_keep, orders_keep, minute_keep) = (
            reserve(&self.calls),
            reserve(&self.weight),
            reserve(&self.orders),
            reserve(&self.orders_per_minute),
        );
        let (order_cost, minute_cost) = if traffic == Traffic::Orders {
            (f64::from(orders), f64::from(orders_per_minute))
        } else {
            (0.0, 0.0)
        };
        let fits = self.calls.available(now_ns) + 1e-9
            >= 1.0 + calls_keep.min(self.calls.capacity() - 1.0).max(0.0)
            && self.weight.available(now_ns) + 1e-9 >= weight + weight_keep
            && self.orders.available(now_ns) + 1e-9 >= order_cost + orders_keep
            && self.orders_per_minute.available(now_ns) + 1e-9 >= minute_cost + minute_keep;
        if !fits {
            return false;
        }
        self.calls.try_take(now_ns, 1.0, 0.0);
        self.weight.try_take(now_ns, weight, 0.0);
        if order_cost > 0.0 {
            self.orders.try_take(now_ns, order_cost, 0.0);
        }
        if minute_cost > 0.0 {
            self.orders_per_minute.try_take(now_ns, minute_cost, 0.0);
        }
        true
    }

    /// What the venue said of its per-minute order count (`X-MBX-ORDER-COUNT-1M`).
    pub fn observe_order_count_per_minute(&mut self, now_ns: i64, used: f64) {
        self.orders_per_minute.observe_used(now_ns, used);
    }

    /// What the venue's headers said was used.
    pub fn observe_usage(
        &mut self,
        now_ns: i64,
        used_weight_1m: Option<f64>,
        order_count_10s: Option<f64>,
    ) {
        if let Some(used) = used_weight_1m {
            self.weight.observe_used(now_ns, used);
        }
        if let Some(used) = order_count_10s {
            self.orders.observe_used(now_ns, used);
        }
    }

    /// The venue said stop (HTTP 429 or 418): send nothing until `now + pause`.
    pub fn block_for(&mut self, now_ns: i64, pause_ns: i64) {
        self.blocked_until_ns = self.blocked_until_ns.max(now_ns + pause_ns);
    }

    /// Headroom of each bucket as a share of its capacity: (calls, weight, orders), orders
    /// being the tighter of the per-10-seconds and per-minute counts.
    pub fn headroom(&mut self, now_ns: i64) -> (f64, f64, f64) {
        (
            self.calls.available(now_ns) / self.calls.capacity(),
            self.weight.available(now_ns) / self.weight.capacity(),
            (self.orders.available(now_ns) / self.orders.capacity())
                .min(self.orders_per_minute.available(now_ns) / self.orders_per_minute.capacity()),
        )
    }
}

#[cfg(test)]
mod tests;
