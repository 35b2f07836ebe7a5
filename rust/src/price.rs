//! The price grid of one instrument: conversion between decimal prices and integer ticks.
//!
//! Inside the core every price is an `i64` number of ticks, so levels are keyed exactly and
//! rounding is explicit. Prices arrive as exchange strings (`"61800.30"`, converted exactly) or
//! as floats (accepted when within a millionth of a tick of the grid), and leave as the
//! correctly rounded float of `ticks × tick_size`.

use crate::error::{CoreError, CoreResult};

/// Powers of ten that are exact in both `i128` and `f64`.
const POW10: [i128; 23] = {
    let mut table = [1_i128; 23];
    let mut i = 1;
    while i < 23 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// Powers of ten that fit an `i64`.
const POW10_I64: [i64; 19] = {
    let mut table = [1_i64; 19];
    let mut i = 1;
    while i < 19 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// How far (in ticks) a float price may sit from the grid and still count as on it.
const FLOAT_GRID_TOLERANCE: f64 = 1e-6;

/// A decimal number `mantissa × 10^-scale`, as read from exchange text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    /// The digits, without the point.
    pub mantissa: i128,
    /// How many of them are after the point.
    pub scale: u32,
}

impl Decimal {
    /// Parses plain decimal text such as `"61800.30"`, `"0.001"` or `"-5"` (no exponent).
    /// Returns `None` when the text is not such a number or has more than 30 digits.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let (negative, digits) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            _ => (false, bytes),
        };
        if digits.is_empty() {
            return None;
        }
        let mut mantissa: i128 = 0;
        let mut scale: u32 = 0;
        let mut seen_point = false;
        let mut seen_digit = false;
        let mut significant = 0_u32;
        for &byte in digits {
            match byte {
                b'0'..=b'9' => {
                    seen_digit = true;
                    if mantissa != 0 || byte != b'0' {
                        significant += 1;
                    }
                    if significant > 30 {
                        return None;
                    }
                    mantissa = mantissa * 10 + i128::from(byte - b'0');
                    if seen_point {
                        scale += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => return None,
            }
        }
        if !seen_digit || scale > 22 {
            return None;
        }
        Some(Self {
            mantissa: if negative { -mantissa } else { mantissa },
            scale,
        })
    }

    /// The shortest decimal that reads back as `value` (Rust's float formatting round-trips).
    #[must_use]
    pub fn from_f64(value: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        Self::parse(&format!("{value}"))
    }

    /// The nearest `f64`: one correctly rounded division of exact operands.
    #[must_use]
    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 / POW10[self.scale as usize] as f64
    }
}

/// The tick grid of an instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceGrid {
    tick: Decimal,
    tick_f64: f64,
    /// The tick's digits and 10^scale as floats, for the fast exact path of [`Self::price`].
    tick_mantissa_f64: f64,
    scale_divisor: f64,
    /// Tick counts up to this keep `ticks × mantissa` below 2^53, so the float product is exact.
    exact_ticks: i64,
    /// The tick's digits (the tick is `tick_mantissa × 10^-scale`).
    tick_mantissa: i64,
}

impl PriceGrid {
    /// A grid from the tick size as exchange text, e.g. `"0.10"`.
    pub fn from_text(tick_size: &str) -> CoreResult<Self> {
        let invalid = || CoreError::InvalidTickSize {
            value: tick_size.to_owned(),
        };
        let tick = Decimal::parse(tick_size.trim()).ok_or_else(invalid)?;
        Self::from_decimal(tick).ok_or_else(invalid)
    }

    /// A grid from the tick size as a float, e.g. `0.1` (read as its shortest decimal).
    pub fn from_f64(tick_size: f64) -> CoreResult<Self> {
        let invalid = || CoreError::InvalidTickSize {
            value: format!("{tick_size}"),
        };
        let tick = Decimal::from_f64(tick_size).ok_or_else(invalid)?;
        Self::from_decimal(tick).ok_or_else(invalid)
    }

    fn from_decimal(tick: Decimal) -> Option<Self> {
        if tick.mantissa <= 0 {
            return None;
        }
        // Strip trailing zeros so that "0.10" and "0.1" are the same grid.
        let mut tick = tick;
        while tick.scale > 0 && tick.mantissa % 10 == 0 {
            tick.mantissa /= 10;
            tick.scale -= 1;
        }
        let mantissa = i64::try_from(tick.mantissa).ok()?;
        Some(Self {
            tick,
            tick_f64: tick.to_f64(),
            tick_mantissa_f64: mantissa as f64,
            scale_divisor: POW10[tick.scale as usize] as f64,
            exact_ticks: (1_i64 << 53) / mantissa,
            tick_mantissa: mantissa,
        })
    }

    /// The tick size as a float.
    #[must_use]
    pub fn tick_size(&self) -> f64 {
        self.tick_f64
    }

    /// The tick size as exact decimal text.
    #[must_use]
    pub fn tick_size_text(&self) -> String {
        decimal_text(self.tick)
    }

    /// The price of `ticks`, correctly rounded to the nearest float.
    #[must_use]
    #[inline]
    pub fn price(&self, ticks: i64) -> f64 {
        if ticks.unsigned_abs() <= self.exact_ticks.unsigned_abs() {
            // Both operands are exact floats, so one division rounds correctly.
            return (ticks as f64 * self.tick_mantissa_f64) / self.scale_divisor;
        }
        Decimal {
            mantissa: i128::from(ticks) * self.tick.mantissa,
            scale: self.tick.scale,
        }
        .to_f64()
    }

    /// Exact ticks of a decimal price; `field` names where it came from for the error.
    pub fn ticks_of_decimal(
        &self,
        price: Decimal,
        text: &dyn Fn() -> String,
        field: &dyn Fn() -> String,
    ) -> CoreResult<i64> {
        if price.mantissa <= 0 {
            return Err(CoreError::InvalidPrice {
                value: text(),
                field: field(),
            });
        }
        let scale = price.scale.max(self.tick.scale);
        let numerator = price.mantissa * POW10[(scale - price.scale) as usize];
        let denominator = self.tick.mantissa * POW10[(scale - self.tick.scale) as usize];
        // 64-bit division when both fit (every real price): 128-bit division is a slow
        // library call, and this runs for every level of every depth message.
        if let (Ok(numerator), Ok(denominator)) =
            (i64::try_from(numerator), i64::try_from(denominator))
        {
            if numerator % denominator != 0 {
                return Err(CoreError::OffTick {
                    value: text(),
                    tick_size: self.tick_size_text(),
                    field: field(),
                });
            }
            return Ok(numerator / denominator);
        }
        if numerator % denominator != 0 {
            return Err(CoreError::OffTick {
                value: text(),
                tick_size: self.tick_size_text(),
                field: field(),
            });
        }
        i64::try_from(numerator / denominator).map_err(|_| CoreError::InvalidPrice {
            value: text(),
            field: field(),
        })
    }

    /// Exact ticks of a price written as exchange text, e.g. `"61800.30"`.
    pub fn ticks_of_text(&self, price: &str, field: &dyn Fn() -> String) -> CoreResult<i64> {
        // The common case first: plain digits with at most one point and at most 18 digits,
        // as every venue writes prices, in 64-bit arithmetic with no trimming or allocation.
        if let Some((mantissa, scale)) = plain_fixed(price.as_bytes()) {
            if let Some(result) = self.ticks_of_fixed(mantissa, scale) {
                return match result {
                    OnGrid::Ticks(ticks) if ticks > 0 => Ok(ticks),
                    OnGrid::Ticks(_) => Err(CoreError::InvalidPrice {
                        value: price.to_owned(),
                        field: field(),
                    }),
                    OnGrid::Off => Err(CoreError::OffTick {
                        value: price.to_owned(),
                        tick_size: self.tick_size_text(),
                        field: field(),
                    }),
                };
            }
        }
        let text = price.trim();
        // Trailing zeros after the point change nothing: "100.10000" is "100.1".
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.')
        } else {
            text
        };
        if let Some(decimal) = Decimal::parse(text) {
            return self.ticks_of_decimal(decimal, &|| price.to_owned(), field);
        }
        let plain = !text.is_empty()
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || byte == b'.' || byte == b'-' || byte == b'+');
        if plain {
            // Too many digits for exact arithmetic: a non-zero digit past the 22nd decimal is off
            // every grid we can hold; anything else is out of range. Never round it onto the grid.
            let fraction = text.split_once('.').map_or("", |(_, fraction)| fraction);
            return Err(if fraction.len() > 22 {
                CoreError::OffTick {
                    value: price.to_owned(),
                    tick_size: self.tick_size_text(),
                    field: field(),
                }
            } else {
                CoreError::InvalidPrice {
                    value: price.to_owned(),
                    field: field(),
                }
            });
        }
        // Exponent forms such as "1.5e-3" are rare on venues: shift the point and read the plain
        // decimal exactly, like any other text.
        match plain_of_exponent_form(text) {
            Some(plain) if plain != text => {
                self.ticks_of_text(&plain, field)
                    .map_err(|error| match error {
                        CoreError::OffTick {
                            tick_size, field, ..
                        } => CoreError::OffTick {
                            value: price.to_owned(),
                            tick_size,
                            field,
                        },
                        CoreError::InvalidPrice { field, .. } => CoreError::InvalidPrice {
                            value: price.to_owned(),
                            field,
                        },
                        other => other,
                    })
            }
            _ => Err(CoreError::InvalidPrice {
                value: price.to_owned(),
                field: field(),
            }),
        }
    }

    /// Ticks of `mantissa × 10^-scale` in 64-bit arithmetic, or None when the numbers do not
    /// fit (the caller then takes the general path).
    #[inline]
    fn ticks_of_fixed(&self, mantissa: i64, scale: u32) -> Option<OnGrid> {
        // The text in units of the grid's last decimal, or off the grid if it has more
        // non-zero decimals than the tick.
        let tick_scale = self.tick.scale;
        let units = if scale <= tick_scale {
            mantissa.checked_mul(*POW10_I64.get((tick_scale - scale) as usize)?)?
        } else {
            // One or two decimals more than the tick (exchange text such as "61790.40" on a
            // 0.1 grid) divide by a constant: a multiplication, not a hardware division.
            let (whole, rest) = match scale - tick_scale {
                1 => (mantissa / 10, mantissa % 10),
                2 => (mantissa / 100, mantissa % 100),
                extra => {
                    let factor = *POW10_I64.get(extra as usize)?;
                    (mantissa / factor, mantissa % factor)
                }
            };
            if rest != 0 {
                return Some(OnGrid::Off);
            }
            whole
        };
        // Ticks of 1, 0.1, 0.01, ... (most instruments): no division left.
        Some(if self.tick_mantissa == 1 {
            OnGrid::Ticks(units)
        } else if units % self.tick_mantissa == 0 {
            OnGrid::Ticks(units / self.tick_mantissa)
        } else {
            OnGrid::Off
        })
    }

    /// The tick as `(digits, scale)`: the tick size is `digits × 10^-scale`, trailing zeros
    /// dropped (0.1 is `(1, 1)`, 0.25 is `(25, 2)`, 5 is `(5, 0)`).
    #[must_use]
    #[inline]
    pub(crate) fn tick_digits(&self) -> (i64, u32) {
        (self.tick_mantissa, self.tick.scale)
    }

    /// Ticks of the plain decimal `mantissa × 10^-scale` (digits already read from exchange
    /// text) when it is a positive price exactly on the grid; None for anything else, which the
    /// caller hands to [`Self::ticks_of_text`] for the error that names the problem.
    #[inline]
    pub(crate) fn ticks_of_digits(&self, mantissa: i64, scale: u32) -> Option<i64> {
        match self.ticks_of_fixed(mantissa, scale)? {
            OnGrid::Ticks(ticks) if ticks > 0 => Some(ticks),
            _ => None,
        }
    }

    /// Ticks of a float price: it must be positive, finite and within a millionth of a tick of
    /// the grid.
    pub fn ticks_of_f64(&self, price: f64, field: &dyn Fn() -> String) -> CoreResult<i64> {
        if !(price.is_finite() && price > 0.0) {
            return Err(CoreError::InvalidPrice {
                value: format!("{price}"),
                field: field(),
            });
        }
        let exact = price / self.tick_f64;
        let ticks = exact.round();
        if (exact - ticks).abs() > FLOAT_GRID_TOLERANCE || ticks > i64::MAX as f64 / 2.0 {
            return Err(CoreError::OffTick {
                value: format!("{price}"),
                tick_size: self.tick_size_text(),
                field: field(),
            });
        }
        Ok(ticks as i64)
    }

    /// The largest tick at or below `price` (for bids) — no grid check.
    #[must_use]
    #[inline]
    pub fn ticks_at_or_below(&self, price: f64) -> i64 {
        let exact = price / self.tick_f64;
        if let Some((nearest, truncated, fraction)) = nearest_whole(exact) {
            if (exact - nearest as f64).abs() <= FLOAT_GRID_TOLERANCE {
                return nearest;
            }
            return if fraction < 0.0 {
                truncated - 1
            } else {
                truncated
            };
        }
        let nearest = exact.round();
        if (exact - nearest).abs() <= FLOAT_GRID_TOLERANCE {
            nearest as i64
        } else {
            exact.floor() as i64
        }
    }

    /// The smallest tick at or above `price` (for asks) — no grid check.
    #[must_use]
    #[inline]
    pub fn ticks_at_or_above(&self, price: f64) -> i64 {
        let exact = price / self.tick_f64;
        if let Some((nearest, truncated, fraction)) = nearest_whole(exact) {
            if (exact - nearest as f64).abs() <= FLOAT_GRID_TOLERANCE {
                return nearest;
            }
            return if fraction > 0.0 {
                truncated + 1
            } else {
                truncated
            };
        }
        let nearest = exact.round();
        if (exact - nearest).abs() <= FLOAT_GRID_TOLERANCE {
            nearest as i64
        } else {
            exact.ceil() as i64
        }
    }
}

/// Below this magnitude every float's whole part and fraction are exact (2^52).
const WHOLE_EXACT_BELOW: f64 = 4_503_599_627_370_496.0;

/// For `|value| < 2^52`: `(value.round(), value.trunc(), value - value.trunc())`, the round half
/// away from zero as `f64::round` does, by one float-to-integer truncation. `f64::round`,
/// `floor` and `ceil` are library calls on x86-64 without SSE4.1 (~50 instructions each), and
/// the quote's grid fitting makes six of them per level. None for larger, infinite or NaN values.
#[inline]
fn nearest_whole(value: f64) -> Option<(i64, i64, f64)> {
    if value.abs() >= WHOLE_EXACT_BELOW || value.is_nan() {
        return None;
    }
    let truncated = value as i64;
    // Exact: below 2^52 the whole part shares the value's exponent range.
    let fraction = value - truncated as f64;
    let nearest = if fraction >= 0.5 {
        truncated + 1
    } else if fraction <= -0.5 {
        truncated - 1
    } else {
        truncated
    };
    Some((nearest, truncated, fraction))
}

/// Where a decimal falls on a grid.
enum OnGrid {
    Ticks(i64),
    Off,
}

/// Digits with at most one point and 1–18 digits in all (no sign, blanks or exponent): the
/// mantissa and the number of digits after the point, trailing zeros dropped.
#[inline]
fn plain_fixed(text: &[u8]) -> Option<(i64, u32)> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    let mut mantissa: i64 = 0;
    let mut scale: u32 = 0;
    let mut point = false;
    let mut digits = 0;
    for &byte in text {
        match byte {
            b'0'..=b'9' => {
                if digits == 18 {
                    return None;
                }
                mantissa = mantissa * 10 + i64::from(byte - b'0');
                digits += 1;
                if point {
                    scale += 1;
                }
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    Some((mantissa, scale))
}

/// `"1.25e2"` → `"125"`, `"5E-3"` → `"0.005"`: the same number written without an exponent.
/// None when the text is not `<plain decimal>e<integer>` or the exponent is absurd.
fn plain_of_exponent_form(text: &str) -> Option<String> {
    let (mantissa, exponent) = text.split_once(['e', 'E'])?;
    let exponent: i32 = exponent.parse().ok()?;
    if exponent.abs() > 40 {
        return None;
    }
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let point = whole.len() as i32 + exponent;
    let plain = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    Some(format!("{sign}{plain}"))
}

fn decimal_text(value: Decimal) -> String {
    let digits = value.mantissa.unsigned_abs().to_string();
    let sign = if value.mantissa < 0 { "-" } else { "" };
    let scale = value.scale as usize;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{whole}.{fraction}")
}

/// Parses a size written as exchange text: finite and not negative.
pub fn size_of_text(size: &str, field: &dyn Fn() -> String) -> CoreResult<f64> {
    if let Some(value) = plain_fixed(size.as_bytes()).and_then(|(m, s)| size_of_digits(m, s)) {
        return Ok(value);
    }
    let value: f64 = size.trim().parse().map_err(|_| CoreError::InvalidSize {
        value: size.to_owned(),
        field: field(),
    })?;
    check_size(value, field)
}

/// The size `mantissa × 10^-scale` (digits already read from exchange text) as the correctly
/// rounded double — the one `parse` gives — when the digits are below 2^53 and the scale at most
/// 22: both are exact doubles, so one division rounds once (Clinger's fast path). None otherwise.
#[inline]
pub(crate) fn size_of_digits(mantissa: i64, scale: u32) -> Option<f64> {
    if (0..1 << 53).contains(&mantissa) && scale <= 22 {
        #[allow(clippy::cast_precision_loss)] // below 2^53: exact
        Some(mantissa as f64 / POW10_F64[scale as usize])
    } else {
        None
    }
}

/// 10^0 ..= 10^22, every one an exact double.
pub(crate) const POW10_F64: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Checks a float size: finite and not negative.
pub fn check_size(size: f64, field: &dyn Fn() -> String) -> CoreResult<f64> {
    if size.is_finite() && size >= 0.0 {
        // -0.0 is stored as 0.0.
        Ok(size + 0.0)
    } else {
        Err(CoreError::InvalidSize {
            value: format!("{size}"),
            field: field(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rounding to the grid by integer truncation gives what `round`, `floor` and `ceil`
    /// give: halves, values a millionth of a tick off the grid, negatives, zeros, and values past
    /// 2^52, infinities and NaN (the library path).
    #[test]
    fn ticks_at_or_below_and_above_round_as_the_float_library_does() {
        let reference = |grid: &PriceGrid, price: f64, below: bool| {
            let exact = price / grid.tick_size();
            let nearest = exact.round();
            if (exact - nearest).abs() <= FLOAT_GRID_TOLERANCE {
                nearest as i64
            } else if below {
                exact.floor() as i64
            } else {
                exact.ceil() as i64
            }
        };
        let mut prices = vec![
            0.0,
            -0.0,
            0.05,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.5,
            0.1,
            0.3,
            61_800.3,
            61_800.35,
            61_800.349_999_9,
            61_800.300_000_01,
            61_800.299_999_99,
            -61_800.35,
            1e15,
            4.5e14,
            4.503_599_627_370_495e14,
            4.503_599_627_370_497e15,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            5e-324,
        ];
        let mut state: u64 = 7;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let ticks = (state >> 40) as f64 - 8_000_000.0;
            let offset = [0.0, 0.5, 1e-7, -1e-7, 2e-6, 0.25, 0.999_999_9][(state % 7) as usize];
            prices.push((ticks + offset) / 10.0);
        }
        for tick in ["0.1", "0.25", "1", "0.001"] {
            let grid = PriceGrid::from_text(tick).unwrap();
            for &price in &prices {
                assert_eq!(
                    grid.ticks_at_or_below(price),
                    reference(&grid, price, true),
                    "{price} below on {tick}"
                );
                assert_eq!(
                    grid.ticks_at_or_above(price),
                    reference(&grid, price, false),
                    "{price} above on {tick}"
                );
            }
        }
    }

    fn here() -> String {
        "test".to_owned()
    }

    #[test]
    fn decimal_parse_cases() {
        let cases = [
            ("61800.30", Some((6_180_030, 2))),
            ("0.001", Some((1, 3))),
            ("5", Some((5, 0))),
            ("-1.5", Some((-15, 1))),
            (".5", Some((5, 1))),
            ("", None),
            ("1.2.3", None),
            ("1e5", None),
            ("abc", None),
            ("nan", None),
        ];
        for (text, expected) in cases {
            let got = Decimal::parse(text).map(|d| (d.mantissa, d.scale));
            assert_eq!(got, expected, "{text}");
        }
    }

    #[test]
    fn text_prices_convert_exactly() {
        let grid = PriceGrid::from_text("0.10").unwrap();
        assert_eq!(grid.tick_size_text(), "0.1");
        assert_eq!(grid.ticks_of_text("61800.30", &here).unwrap(), 618_003);
        assert_eq!(grid.ticks_of_text("61800.3", &here).unwrap(), 618_003);
        assert_eq!(grid.price(618_003), 61800.3);
        assert!(matches!(
            grid.ticks_of_text("61800.35", &here),
            Err(CoreError::OffTick { .. })
        ));
        assert!(matches!(
            grid.ticks_of_text("0", &here),
            Err(CoreError::InvalidPrice { .. })
        ));
        assert!(matches!(
            grid.ticks_of_text("-1", &here),
            Err(CoreError::InvalidPrice { .. })
        ));
        assert!(matches!(
            grid.ticks_of_text("x", &here),
            Err(CoreError::InvalidPrice { .. })
        ));
    }

    #[test]
    fn long_digit_strings_take_the_general_path() {
        let grid = PriceGrid::from_text("0.1").unwrap();
        assert_eq!(plain_fixed(b"9999999999999999999"), None, "19 digits");
        assert_eq!(
            plain_fixed(b"999999999999999999"),
            Some((999_999_999_999_999_999, 0))
        );
        // Too large for i64 ticks either way: a clear error, never a wrapped number.
        assert!(matches!(
            grid.ticks_of_text("9999999999999999999", &here),
            Err(CoreError::InvalidPrice { .. })
        ));
        assert!(grid.ticks_of_text("99999999999999999", &here).is_ok());
    }

    proptest::proptest! {
        /// The fast exact size path gives the very double `parse` gives.
        #[test]
        fn size_fast_path_equals_parse(digits in 1u64..1_000_000_000_000_000, scale in 0usize..19,
                                       padding in 0usize..4) {
            let text = digits.to_string();
            let text = if scale == 0 { text } else {
                let padded = format!("{text:0>width$}", width = scale + 1);
                let (whole, fraction) = padded.split_at(padded.len() - scale);
                format!("{whole}.{fraction}{}", "0".repeat(padding))
            };
            let parsed: f64 = text.parse().unwrap();
            proptest::prop_assert_eq!(size_of_text(&text, &here).unwrap().to_bits(), parsed.to_bits(), "{}", text);
        }

        /// Fixed-point price text lands on the same tick as the general decimal path.
        #[test]
        fn price_fast_path_equals_the_decimal_path(units in 1i64..10_000_000_000, decimals in 0u32..6,
                                                   tick in proptest::sample::select(vec!["0.1", "0.01", "0.5", "0.25", "5", "1"])) {
            let grid = PriceGrid::from_text(tick).unwrap();
            let padded = format!("{units:0>width$}", width = decimals as usize + 1);
            let (whole, fraction) = padded.split_at(padded.len() - decimals as usize);
            let text = if decimals == 0 { whole.to_owned() } else { format!("{whole}.{fraction}") };
            let fast = grid.ticks_of_text(&text, &here).ok();
            let general = grid.ticks_of_decimal(Decimal::parse(&text).unwrap(), &|| text.clone(), &here).ok();
            proptest::prop_assert_eq!(fast, general, "{} on {}", text, tick);
        }
    }

    #[test]
    fn float_prices_within_tolerance() {
        let grid = PriceGrid::from_f64(0.1).unwrap();
        assert_eq!(grid.ticks_of_f64(61800.3, &here).unwrap(), 618_003);
        assert!(grid.ticks_of_f64(61800.35, &here).is_err());
        assert!(grid.ticks_of_f64(f64::NAN, &here).is_err());
        assert!(grid.ticks_of_f64(f64::INFINITY, &here).is_err());
        let grid = PriceGrid::from_text("0.0001").unwrap();
        assert_eq!(grid.ticks_of_f64(1.9531, &here).unwrap(), 19_531);
        assert_eq!(grid.price(19_531), 1.9531);
    }

    #[test]
    fn round_trip_of_every_tick_in_a_range() {
        let grid = PriceGrid::from_text("0.01").unwrap();
        for ticks in 1..20_000 {
            let price = grid.price(ticks);
            assert_eq!(grid.ticks_of_f64(price, &here).unwrap(), ticks);
            assert_eq!(
                grid.ticks_of_text(&format!("{price}"), &here).unwrap(),
                ticks
            );
        }
    }

    #[test]
    fn bad_tick_sizes() {
        for bad in ["0", "-0.1", "abc", ""] {
            assert!(PriceGrid::from_text(bad).is_err(), "{bad}");
        }
        assert!(PriceGrid::from_f64(f64::NAN).is_err());
        assert!(PriceGrid::from_f64(0.0).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size_of_text("0.000", &here).unwrap(), 0.0);
        assert_eq!(size_of_text("1.5", &here).unwrap(), 1.5);
        assert!(size_of_text("-1", &here).is_err());
        assert!(size_of_text("nan", &here).is_err());
        assert!(size_of_text("inf", &here).is_err());
        assert!(check_size(f64::NAN, &here).is_err());
    }
}
