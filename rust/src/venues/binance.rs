//! Binance USDⓈ-M `depthUpdate` events from their raw JSON text (bare or in the combined-stream
//! envelope `{"stream": ..., "data": {...}}`), applied to a book under the venue's rules.

use crate::book::{ApplyOutcome, BinanceDiff, Level, OrderBook};
use crate::error::{CoreError, CoreResult};
use crate::price::{size_of_digits, size_of_text, PriceGrid, POW10_F64};

/// The fields of a `depthUpdate` that the book needs; the levels go straight into the
/// caller's buffers.
#[derive(Debug, Default)]
struct DepthHeader {
    event_time_ms: Option<i64>,
    first_update_id: Option<u64>,
    last_update_id: Option<u64>,
    prev_last_update_id: Option<u64>,
    has_bids: bool,
    has_asks: bool,
}

/// A number written as a JSON string: its digits when plain, else the text itself.
enum DecimalText<'a> {
    Digits {
        mantissa: i64,
        scale: u32,
        text: &'a [u8],
    },
    Text(&'a str),
}

/// Digits and at most one point: ASCII by construction.
fn ascii(text: &[u8]) -> &str {
    std::str::from_utf8(text).unwrap_or_default()
}

fn malformed(detail: impl std::fmt::Display) -> CoreError {
    CoreError::Malformed(format!("depthUpdate: {detail}"))
}

/// Eight bytes from `at`, the first one lowest (None past the end).
#[inline(always)] // read for every level: no call, no returned enum
#[allow(clippy::inline_always)]
fn word_at(text: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = text.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// How many of the word's bytes, from the first, are ASCII digits (0 to 8).
#[inline(always)] // read for every level: no call, no returned enum
#[allow(clippy::inline_always)]
fn leading_digits(word: u64) -> usize {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    // A digit's high nibble is 3, and adding 6 leaves it 3. A carry out of a byte only
    // reaches later bytes, past the first non-digit.
    let high = (word & HIGH) ^ THREES;
    let low = (word.wrapping_add(0x0606_0606_0606_0606) & HIGH) ^ THREES;
    ((high | low).trailing_zeros() / 8) as usize
}

/// The value of the word's first `count` bytes (1 to 8 ASCII digits, the first most
/// significant), with three multiplications.
#[inline(always)] // read for every level: no call, no returned enum
#[allow(clippy::inline_always)]
fn digits_value(word: u64, count: usize) -> i64 {
    // Keep the digits' values, moved up so that the dropped bytes become leading zeros.
    swar_value((word & 0x0F0F_0F0F_0F0F_0F0F) << (8 * (8 - count)))
}

/// The value of eight digit values (0–9, one a byte, the first byte most significant; leading
/// zero bytes are leading zeros), with three multiplications.
#[inline(always)] // read for every level: no call
#[allow(clippy::inline_always)]
fn swar_value(values: u64) -> i64 {
    let mut value = (values.wrapping_mul(1 + (10 << 8))) >> 8;
    value = ((value & 0x00FF_00FF_00FF_00FF).wrapping_mul(1 + (100 << 16))) >> 16;
    value = ((value & 0x0000_FFFF_0000_FFFF).wrapping_mul(1 + (10_000 << 32))) >> 32;
    value as i64
}

const POWERS_OF_TEN: [i64; 11] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
];

/// The common number text read eight bytes at a time: 1–7 digits, optionally a point and 1–7
/// more, then the closing quote. Returns `(mantissa, scale, end)` with `end` at the quote, or
/// None for any other shape (or too near the end of the text), which the byte-at-a-time loop
/// then reads with the same result.
#[inline(always)] // read for every level: no call, no returned enum
#[allow(clippy::inline_always)]
fn short_decimal(text: &[u8], start: usize) -> Option<(i64, u32, usize)> {
    let word = word_at(text, start)?;
    let whole = leading_digits(word);
    if whole == 0 || whole == 8 {
        return None;
    }
    let integer = digits_value(word, whole);
    let after = start + whole;
    match text[after] {
        b'"' => Some((integer, 0, after)),
        b'.' => {
            let word = word_at(text, after + 1)?;
            let fraction = leading_digits(word);
            let end = after + 1 + fraction;
            if fraction == 0 || fraction == 8 || text[end] != b'"' {
                return None;
            }
            let mantissa = integer * POWERS_OF_TEN[fraction] + digits_value(word, fraction);
            Some((mantissa, fraction as u32, end))
        }
        _ => None,
    }
}

/// The bytes of a level that [`level_in`] reads: the longest level it takes (`["` and `","`
/// around two numbers of at most 15 bytes, then `"]`: 37 bytes) and the last eight-byte read.
const LEVEL_WINDOW: usize = 40;

/// Eight ASCII zeros.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// The eight bytes of `window` from `at`, the first one lowest.
#[inline(always)] // read for every level: no call
#[allow(clippy::inline_always)]
fn word_in<const W: usize>(window: &[u8; W], at: usize) -> u64 {
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&window[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// How many of the word's bytes, from the first, are digit values 0–9 (0 to 8): the bytes of
/// `text ^ ZEROS`, where a digit becomes its value and anything else a byte above 9.
#[inline(always)] // read for every level: no call
#[allow(clippy::inline_always)]
fn leading_digit_values(values: u64) -> usize {
    // A byte's high bit ends up set when it is above 9: by itself (0x80 and up) or by the
    // addition (0x0A-0x7F plus 0x76). A carry out of a byte only reaches later bytes, past
    // the first non-digit.
    let above_nine = (values.wrapping_add(0x7676_7676_7676_7676) | values) & 0x8080_8080_8080_8080;
    (above_nine.trailing_zeros() / 8) as usize
}

/// A mask of the word's first `count` bytes (`count` at most 7).
#[inline(always)] // read for every level: no call
#[allow(clippy::inline_always)]
fn first_bytes(count: usize) -> u64 {
    (1_u64 << (8 * count)) - 1
}

/// A number string's digits as found in a level's window: `whole` digit values (bytes 0–9,
/// the text's bytes minus `'0'`) at the start of `whole_word`, then (after a point) `fraction`
/// at the start of `fraction_word`, the closing quote at `end`.
struct WindowNumber {
    whole_word: u64,
    whole: usize,
    fraction_word: u64,
    fraction: usize,
    end: usize,
}

impl WindowNumber {
    /// The number at `start` (just past its opening quote): 1–7 digits, optionally a point and
    /// 1–7 more, then the closing quote. None for any other shape.
    #[inline(always)] // read for every level: no call, no returned enum
    #[allow(clippy::inline_always)]
    fn read(window: &[u8; LEVEL_WINDOW], start: usize) -> Option<Self> {
        let whole_word = word_in(window, start) ^ ZEROS;
        let whole = leading_digit_values(whole_word);
        if whole == 0 || whole == 8 {
            return None;
        }
        let after = start + whole;
        match window[after] {
            b'"' => Some(Self {
                whole_word,
                whole,
                fraction_word: 0,
                fraction: 0,
                end: after,
            }),
            b'.' => {
                let fraction_word = word_in(window, after + 1) ^ ZEROS;
                let fraction = leading_digit_values(fraction_word);
                let end = after + 1 + fraction;
                if fraction == 0 || fraction == 8 || window[end] != b'"' {
                    return None;
                }
                Some(Self {
                    whole_word,
                    whole,
                    fraction_word,
                    fraction,
                    end,
                })
            }
            _ => None,
        }
    }

    /// The whole digits and the first `fraction` decimals as one integer, when they are at
    /// most eight digits: the two runs of digit bytes are joined into one word (the point
    /// dropped) and read with one [`swar_value`].
    #[inline(always)] // read for every level: no call, no returned enum
    #[allow(clippy::inline_always)]
    fn digits(&self, fraction: usize) -> Option<i64> {
        if self.whole + fraction > 8 {
            return None;
        }
        // The whole digits in the top bytes, then moved down to make room for the decimals.
        let aligned = self.whole_word << (8 * (8 - self.whole));
        let joined = if fraction == 0 {
            aligned
        } else {
            (aligned >> (8 * fraction)) | (self.fraction_word << (8 * (8 - fraction)))
        };
        Some(swar_value(joined))
    }
}

/// The common level at the start of `window`, written without whitespace:
/// `["<price>","<size>"]`, both numbers in the shape [`WindowNumber::read`] takes, the price's
/// digits (decimals past the tick's dropped, which must be zeros) and the size's each at most
/// eight, the price on the grid and positive. Returns `(ticks, size, bytes read)`; None for
/// anything else, which the general path reads with the same result or the error that names it.
/// `tick` is the grid's [`PriceGrid::tick_digits`], its scale at most 10.
#[inline(always)] // read for every level: no call, no returned enum
#[allow(clippy::inline_always)]
fn level_in(window: &[u8; LEVEL_WINDOW], tick: (i64, u32)) -> Option<(i64, f64, usize)> {
    let (tick_digits, tick_scale) = (tick.0, tick.1 as usize);
    if window[..2] != *b"[\"" {
        return None;
    }
    let price = WindowNumber::read(window, 2)?;
    let mut fraction = price.fraction;
    if fraction > tick_scale {
        // Decimals past the tick's ("61790.40" on a 0.1 grid) must be zeros, and then change
        // nothing: checked on the bytes, so no division.
        let past_tick = first_bytes(fraction) ^ first_bytes(tick_scale);
        if price.fraction_word & past_tick != 0 {
            return None;
        }
        fraction = tick_scale;
    }
    let units = price.digits(fraction)? * POWERS_OF_TEN[tick_scale - fraction];
    let ticks = if tick_digits == 1 {
        units
    } else if units % tick_digits == 0 {
        units / tick_digits
    } else {
        return None;
    };
    if ticks <= 0 || window[price.end + 1..price.end + 3] != *b",\"" {
        return None;
    }
    let size = WindowNumber::read(window, price.end + 3)?;
    let size_value = size_of_digits(size.digits(size.fraction)?, size.fraction as u32)?;
    if window[size.end + 1] != b']' {
        return None;
    }
    Some((ticks, size_value, size.end + 2))
}

/// [`level_in`] on the last bytes of a message, copied into a window padded with zero bytes
/// (which are not digits, so a number never runs into the padding).
#[cold]
fn level_in_tail(rest: &[u8], tick: (i64, u32)) -> Option<(i64, f64, usize)> {
    let mut window = [0_u8; LEVEL_WINDOW];
    window[..rest.len()].copy_from_slice(rest);
    level_in(&window, tick)
}

/// The bytes [`LevelShape::read`] looks at: the level (at most [`MAX_SHAPED_LEVEL`] bytes)
/// in three words, and the eight-byte reads of its two numbers.
const SHAPE_WINDOW: usize = 32;

/// The longest level [`LevelShape`] describes: it and the byte after it fit in three words.
const MAX_SHAPED_LEVEL: usize = 23;

/// Where one number's digits sit in the eight bytes read from its first digit, and how they
/// become one integer: the whole digits and the decimals kept (a price keeps as many as the
/// tick has; a size keeps all) joined into one word for [`swar_value`], with no branch.
#[derive(Debug, Clone, Copy, PartialEq)]
struct NumberShape {
    /// The whole digits' bytes.
    whole_mask: u64,
    /// Moves the whole digits to the top bytes.
    whole_shift: u64,
    /// Then moves them down to make room for the decimals kept.
    kept_shift: u64,
    /// Where the decimals start, in bits (0 when none are kept).
    decimals_at: u64,
    /// Moves the decimals kept to the top bytes (0 when none are kept).
    decimals_shift: u64,
    /// All ones when decimals are kept, else 0.
    decimals_mask: u64,
    /// Decimals past the tick, which must be zeros.
    dropped_mask: u64,
}

impl NumberShape {
    /// A number of `whole` digits, then (when `decimals > 0`) a point and `decimals` digits,
    /// keeping the first `kept` decimals (`whole + kept` at most 8; with a point,
    /// `whole + 1 + decimals` at most 8).
    fn new(whole: usize, decimals: usize, kept: usize) -> Self {
        let bytes = |count: usize| {
            if count >= 8 {
                u64::MAX
            } else {
                (1_u64 << (8 * count)) - 1
            }
        };
        let (decimals_at, decimals_shift, decimals_mask) = if kept == 0 {
            (0, 0, 0)
        } else {
            (8 * (whole as u64 + 1), 8 * (8 - kept as u64), u64::MAX)
        };
        Self {
            whole_mask: bytes(whole),
            whole_shift: 8 * (8 - whole as u64),
            kept_shift: 8 * kept as u64,
            decimals_at,
            decimals_shift,
            decimals_mask,
            dropped_mask: if decimals > kept {
                bytes(whole + 1 + decimals) ^ bytes(whole + 1 + kept)
            } else {
                0
            },
        }
    }

    /// The digits as one integer, from the number's eight bytes minus `'0'` each.
    #[inline(always)] // read for every level: no call
    #[allow(clippy::inline_always)]
    fn value(&self, values: u64) -> i64 {
        let whole = ((values & self.whole_mask) << self.whole_shift) >> self.kept_shift;
        let decimals = ((values >> self.decimals_at) << self.decimals_shift) & self.decimals_mask;
        swar_value(whole | decimals)
    }
}

/// The byte layout of one level's text, `["<price>","<size>"]`, written without whitespace:
/// where its punctuation sits and how many digits each number has on either side of its point.
/// Consecutive levels nearly always share it (on the BTCUSDT recording, 94% of levels have the
/// layout of the level before), so a level is read by checking its bytes against the last
/// level's layout, a few operations a word, instead of searching for its quotes and points.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LevelShape {
    /// The level's bytes, brackets included (at most [`MAX_SHAPED_LEVEL`]).
    len: usize,
    /// Per word of the level's first 24 bytes: the bytes of its punctuation, and their values.
    punctuation_mask: [u64; 3],
    punctuation: [u64; 3],
    /// Per word: the high bit of every byte that must be a digit.
    digit_bits: [u64; 3],
    /// Where the size's first digit is.
    size_at: usize,
    price: NumberShape,
    /// The price's digits times this are units of the tick's last decimal.
    price_units: i64,
    size: NumberShape,
    /// The size's digits divided by this are the size (as [`size_of_digits`] divides).
    size_divisor: f64,
}

/// How many level layouts [`LevelLayouts`] keeps.
const LAYOUTS: usize = 4;

/// The layouts of the levels read lately (see [`LevelShape`]), kept from one message to the
/// next by the caller of [`apply_depth_json`]: a message's levels mostly have one of a few
/// layouts (on the BTCUSDT recording, a price of 5 whole digits and 2 decimals, a size of 1 or
/// 2 whole digits and 3 decimals), so a level is read with the last level's layout, else with
/// another one kept, and only a layout not seen lately is worked out from the bytes.
#[derive(Debug, Clone, Copy)]
pub struct LevelLayouts {
    shapes: [LevelShape; LAYOUTS],
    /// The layout of the last level read.
    last: usize,
}

impl Default for LevelLayouts {
    fn default() -> Self {
        Self {
            shapes: [LevelShape::NONE; LAYOUTS],
            last: 0,
        }
    }
}

impl LevelLayouts {
    /// The level at the start of `window` read with a kept layout other than the last one,
    /// or with its own layout (which then replaces the one kept longest); `(level, its length)`.
    #[cold]
    fn read_other(
        &mut self,
        window: &[u8; SHAPE_WINDOW],
        tick: (i64, u32),
    ) -> Option<(Level, usize)> {
        for index in 0..LAYOUTS {
            if index == self.last {
                continue;
            }
            if let Some(level) = self.shapes[index].read(window, tick.0) {
                self.last = index;
                return Some((level, self.shapes[index].len));
            }
        }
        let shape = LevelShape::of(window, tick.1)?;
        let level = shape.read(window, tick.0)?;
        self.last = (self.last + 1) % LAYOUTS;
        self.shapes[self.last] = shape;
        Some((level, shape.len))
    }
}

/// The last bytes of a message in a window padded with zero bytes (which are not digits, so a
/// number never runs into the padding).
#[cold]
fn padded_window(rest: &[u8]) -> [u8; SHAPE_WINDOW] {
    let mut window = [0_u8; SHAPE_WINDOW];
    let used = rest.len().min(SHAPE_WINDOW);
    window[..used].copy_from_slice(&rest[..used]);
    window
}

impl LevelShape {
    /// A layout no level has: its punctuation asks for a zero byte where a level has `[`.
    const NONE: Self = Self {
        len: 0,
        punctuation_mask: [0xFF, 0, 0],
        punctuation: [0, 0, 0],
        digit_bits: [0; 3],
        size_at: 0,
        price: NumberShape {
            whole_mask: 0,
            whole_shift: 0,
            kept_shift: 0,
            decimals_at: 0,
            decimals_shift: 0,
            decimals_mask: 0,
            dropped_mask: 0,
        },
        price_units: 1,
        size: NumberShape {
            whole_mask: 0,
            whole_shift: 0,
            kept_shift: 0,
            decimals_at: 0,
            decimals_shift: 0,
            decimals_mask: 0,
            dropped_mask: 0,
        },
        size_divisor: 1.0,
    };

    /// The layout of the level at the start of `window`, for a grid of `tick_scale` decimals;
    /// None for a level this layout cannot describe (whitespace, a number of more than eight
    /// bytes, a level longer than [`MAX_SHAPED_LEVEL`], anything not a level).
    fn of(window: &[u8; SHAPE_WINDOW], tick_scale: u32) -> Option<Self> {
        let words = [0, 8, 16].map(|at| word_in(window, at));
        // The high bit of every byte that is not a digit (as in `read`), and the same as one bit
        // a byte over the first 24 bytes (each word's eight high bits gathered into its top byte
        // by one multiplication).
        let not_digit = words.map(|text| {
            let values = text ^ ZEROS;
            (values.wrapping_add(0x7676_7676_7676_7676) | values) & 0x8080_8080_8080_8080
        });
        let others = not_digit
            .iter()
            .enumerate()
            .fold(0_u32, |others, (index, high)| {
                let bits = ((high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32;
                others | bits << (8 * index)
            });
        // The first byte at or after `from` that is not a digit (24 or more when none is).
        let next_other = |from: usize| {
            if from >= 24 {
                24
            } else {
                (others >> from).trailing_zeros() as usize + from
            }
        };
        // (whole digits, decimals, the closing quote) of the number string starting at `start`.
        let number = |start: usize| -> Option<(usize, usize, usize)> {
            let first = next_other(start);
            let whole = first - start;
            let (decimals, end) = if window[first] == b'.' {
                let end = next_other(first + 1);
                let decimals = end - first - 1;
                if decimals == 0 || whole + 1 + decimals > 8 {
                    return None;
                }
                (decimals, end)
            } else {
                (0, first)
            };
            ((1..=8).contains(&whole) && end < 24 && window[end] == b'"')
                .then_some((whole, decimals, end))
        };
        if window[..2] != *b"[\"" {
            return None;
        }
        let (price_whole, price_decimals, price_end) = number(2)?;
        if window[price_end + 1..price_end + 3] != *b",\"" {
            return None;
        }
        let size_at = price_end + 3;
        let (size_whole, size_decimals, size_end) = number(size_at)?;
        let len = size_end + 2;
        if len > MAX_SHAPED_LEVEL || window[size_end + 1] != b']' {
            return None;
        }
        let mut shape = Self {
            len,
            punctuation_mask: [0; 3],
            punctuation: [0; 3],
            digit_bits: [0; 3],
            size_at,
            price: NumberShape::new(
                price_whole,
                price_decimals,
                price_decimals.min(tick_scale as usize),
            ),
            price_units: POWERS_OF_TEN[(tick_scale as usize).saturating_sub(price_decimals)],
            size: NumberShape::new(size_whole, size_decimals, size_decimals),
            size_divisor: POW10_F64[size_decimals],
        };
        for index in 0..3 {
            // The bytes of this word that belong to the level.
            let inside = match len.saturating_sub(8 * index) {
                0 => 0,
                count @ 1..=7 => (1_u64 << (8 * count)) - 1,
                _ => u64::MAX,
            };
            let punctuation_mask = ((not_digit[index] >> 7) * 0xFF) & inside;
            shape.punctuation_mask[index] = punctuation_mask;
            shape.punctuation[index] = words[index] & punctuation_mask;
            shape.digit_bits[index] = !not_digit[index] & 0x8080_8080_8080_8080 & inside;
        }
        Some(shape)
    }

    /// The level at the start of `window` when it has this layout, its price positive and on
    /// the grid of `tick_digits` (see [`PriceGrid::tick_digits`]): `(ticks, size)`, exactly
    /// what the general path reads. None for anything else.
    #[inline(always)] // read for every level: no call, no returned enum
    #[allow(clippy::inline_always)]
    fn read(&self, window: &[u8; SHAPE_WINDOW], tick_digits: i64) -> Option<Level> {
        let word = |at: usize| word_in(window, at);
        let mut wrong = 0;
        for (index, at) in [0, 8, 16].into_iter().enumerate() {
            let text = word(at);
            wrong |= (text & self.punctuation_mask[index]) ^ self.punctuation[index];
            // A digit minus '0' is 0-9; any other byte gets its high bit set here (see
            // `leading_digit_values`; a carry only reaches later bytes, past a non-digit).
            let values = text ^ ZEROS;
            wrong |= (values.wrapping_add(0x7676_7676_7676_7676) | values) & self.digit_bits[index];
        }
        let price = word(2) ^ ZEROS;
        let size = word(self.size_at) ^ ZEROS;
        if wrong | (price & self.price.dropped_mask) != 0 {
            return None;
        }
        let units = self.price.value(price) * self.price_units;
        let ticks = if tick_digits == 1 {
            units
        } else if units % tick_digits == 0 {
            units / tick_digits
        } else {
            return None;
        };
        if ticks <= 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // at most eight digits: exact
        let size = self.size.value(size) as f64 / self.size_divisor;
        Some((ticks, size))
    }
}

/// A forward-only reader over the message's bytes. It reads the fields of a `depthUpdate` in
/// one pass, converting level text to ticks and sizes as it goes, and steps over every other
/// value with a structural check (strings, numbers, literals, nested objects and arrays).
struct Scanner<'a, 'l> {
    text: &'a [u8],
    at: usize,
    /// The layouts of the levels read lately.
    layouts: &'l mut LevelLayouts,
}

impl<'a, 'l> Scanner<'a, 'l> {
    fn new(text: &'a [u8], layouts: &'l mut LevelLayouts) -> Self {
        Self {
            text,
            at: 0,
            layouts,
        }
    }

    /// Levels of one side from here while each is written as [`LevelShape`] reads it: each one
    /// checked against the last level's layout, a new layout learnt when it does not match. The
    /// scanner stops at the first level it cannot read this way (the general path reads it, or
    /// names what is wrong with it), or past the side's closing `]`: then returns true.
    #[inline]
    fn shaped_levels(
        &mut self,
        tick: (i64, u32),
        name: &str,
        out: &mut Vec<Level>,
    ) -> CoreResult<bool> {
        let text = self.text;
        let mut at = self.at;
        let done = loop {
            let padded;
            let window: &[u8; SHAPE_WINDOW] = if let Some(window) = text.get(at..at + SHAPE_WINDOW)
            {
                window.try_into().unwrap_or(&[0; SHAPE_WINDOW])
            } else {
                padded = padded_window(&text[at.min(text.len())..]);
                &padded
            };
            let last = &self.layouts.shapes[self.layouts.last];
            let len = if let Some(level) = last.read(window, tick.0) {
                out.push(level);
                last.len
            } else {
                let Some((level, len)) = self.layouts.read_other(window, tick) else {
                    break false;
                };
                out.push(level);
                len
            };
            at += len;
            match text.get(at) {
                Some(b',') => at += 1,
                Some(b']') => {
                    at += 1;
                    break true;
                }
                _ => {
                    // Whitespace or anything else after the level.
                    self.at = at;
                    match self.peek() {
                        Some(b',') => at = self.at + 1,
                        Some(b']') => {
                            at = self.at + 1;
                            break true;
                        }
                        _ => {
                            let index = out.len() - 1;
                            return Err(
                                self.unexpected(&format!("',' or ']' after {name}[{index}]"))
                            );
                        }
                    }
                }
            }
        };
        self.at = at;
        Ok(done)
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.get(self.at).copied()
    }

    #[inline]
    fn expect(&mut self, byte: u8) -> CoreResult<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{}'", byte as char)))
        }
    }

    fn unexpected(&self, wanted: &str) -> CoreError {
        match self.text.get(self.at) {
            Some(found) => malformed(format!(
                "expected {wanted} at byte {}, found '{}'",
                self.at,
                found.escape_ascii()
            )),
            None => malformed(format!(
                "expected {wanted}, the message ends at byte {}",
                self.at
            )),
        }
    }

    /// A string without escapes, borrowed; a string with escapes is stepped over and returned
    /// as None (no field we read is ever escaped).
    #[inline]
    fn string(&mut self) -> CoreResult<Option<&'a str>> {
        // The input is a &str and the slice ends at ASCII quotes: always valid UTF-8.
        Ok(self
            .string_bytes()?
            .and_then(|bytes| std::str::from_utf8(bytes).ok()))
    }

    /// [`Self::string`] as bytes, for keys and values that are only compared or stepped over
    /// (no UTF-8 check: the text is a `&str` and the string ends at an ASCII quote).
    #[inline]
    fn string_bytes(&mut self) -> CoreResult<Option<&'a [u8]>> {
        self.expect(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            match self.text.get(self.at) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.at += 2;
                }
                Some(byte) if *byte < 0x20 => return Err(self.unexpected("a string character")),
                Some(_) => self.at += 1,
                None => return Err(malformed("a string is not closed")),
            }
        }
        let end = self.at;
        self.at += 1;
        Ok((!escaped).then(|| &self.text[start..end]))
    }

    /// The common level right here (see [`level_in`]), the scanner moved past it; None (the
    /// scanner unmoved) for anything else. `tick` is the grid's [`PriceGrid::tick_digits`].
    #[inline(always)] // read for every level: no call, no returned enum
    #[allow(clippy::inline_always)]
    fn quick_level(&mut self, tick: (i64, u32)) -> Option<Level> {
        let rest = self.text.get(self.at..)?;
        let (ticks, size, used) = match rest.get(..LEVEL_WINDOW) {
            Some(window) => level_in(window.try_into().ok()?, tick)?,
            None => level_in_tail(rest, tick)?,
        };
        self.at += used;
        Some((ticks, size))
    }

    /// The common number string right here (no whitespace before it), read eight bytes at a
    /// time: `(mantissa, scale, digits text)`, the scanner moved past it. None (the scanner
    /// unmoved) for anything else, which [`Self::decimal_string`] then reads.
    #[inline(always)] // read for every level: no call, no returned enum
    #[allow(clippy::inline_always)]
    fn quick_decimal(&mut self) -> Option<(i64, u32, &'a [u8])> {
        if self.text.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at + 1;
        let (mantissa, scale, end) = short_decimal(self.text, start)?;
        self.at = end + 1;
        Some((mantissa, scale, &self.text[start..end]))
    }

    /// A string of plain decimal digits (at most one point, 1–18 digits) read as
    /// `(mantissa, scale)` in the same pass that finds its end; any other string comes back as
    /// text for the general, error-naming path.
    #[inline]
    fn decimal_string(&mut self) -> CoreResult<DecimalText<'a>> {
        self.expect(b'"')?;
        let start = self.at;
        let text = self.text;
        let mut at = start;
        let mut mantissa: i64 = 0;
        let mut digits = 0_u32;
        let mut scale = 0_u32;
        let mut point = false;
        while let Some(&byte) = text.get(at) {
            let digit = byte.wrapping_sub(b'0');
            if digit < 10 {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(i64::from(digit));
                digits += 1;
                scale += u32::from(point);
            } else if byte == b'.' && !point {
                point = true;
            } else {
                break;
            }
            at += 1;
        }
        if text.get(at) == Some(&b'"') && (1..=18).contains(&digits) {
            self.at = at + 1;
            return Ok(DecimalText::Digits {
                mantissa,
                scale,
                text: &text[start..at],
            });
        }
        self.at = start - 1;
        match self.string()? {
            Some(text) => Ok(DecimalText::Text(text)),
            None => Err(malformed(format!("escaped number text at byte {start}"))),
        }
    }

    /// The integer written right here (no whitespace before it) as 1 to 15 digits, read
    /// eight bytes at a time, and its length; None (the scanner unmoved) when the text here
    /// is anything else, or goes on with a point or an exponent (the byte loops then read it
    /// or name what is wrong with it). Ids and times of a `depthUpdate` are 13 digits.
    #[inline]
    fn digit_run(&self) -> Option<(u64, usize)> {
        let first = word_at(self.text, self.at)?;
        let leading = leading_digits(first);
        let (value, len) = match leading {
            0 => return None,
            1..=7 => (digits_value(first, leading), leading),
            _ => {
                let second = word_at(self.text, self.at + 8)?;
                match leading_digits(second) {
                    0 => (digits_value(first, 8), 8),
                    more @ 1..=7 => (
                        digits_value(first, 8) * POWERS_OF_TEN[more] + digits_value(second, more),
                        8 + more,
                    ),
                    _ => return None,
                }
            }
        };
        match self.text.get(self.at + len) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some((value as u64, len)),
        }
    }

    fn unsigned(&mut self, field: &str) -> CoreResult<u64> {
        if let Some((value, len)) = self.digit_run() {
            self.at += len;
            return Ok(value);
        }
        self.skip_whitespace();
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(byte @ b'0'..=b'9') = self.text.get(self.at) {
            value = value
                .checked_mul(10)
                .and_then(|value| value.checked_add(u64::from(byte - b'0')))
                .ok_or_else(|| malformed(format!("{field} is out of range")))?;
            self.at += 1;
        }
        if self.at == start || matches!(self.text.get(self.at), Some(b'.' | b'e' | b'E')) {
            return Err(malformed(format!("{field} must be a non-negative integer")));
        }
        Ok(value)
    }

    /// A key of one or two plain characters and its colon right here, written without
    /// whitespace (`"E":`, `"pu":`), the scanner moved past them; None (the scanner unmoved)
    /// for anything else, which [`Self::string_bytes`] then reads.
    #[inline]
    fn short_key(&mut self) -> Option<&'a [u8]> {
        let text = self.text;
        let head = text.get(self.at..self.at + 5)?;
        let plain = |byte: u8| byte >= 0x20 && byte != b'"' && byte != b'\\';
        if head[0] != b'"' || !plain(head[1]) {
            return None;
        }
        let len = if head[2] == b'"' && head[3] == b':' {
            1
        } else if plain(head[2]) && head[3] == b'"' && head[4] == b':' {
            2
        } else {
            return None;
        };
        let key = &text[self.at + 1..self.at + 1 + len];
        self.at += len + 3;
        Some(key)
    }

    /// Steps over any JSON value.
    fn skip_value(&mut self, nesting: usize) -> CoreResult<()> {
        if nesting > 64 {
            return Err(malformed("nested too deeply"));
        }
        match self.peek() {
            Some(b'"') => self.string_bytes().map(drop),
            Some(open @ (b'{' | b'[')) => {
                self.at += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                if self.peek() == Some(close) {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    if open == b'{' {
                        self.string_bytes()?;
                        self.expect(b':')?;
                    }
                    self.skip_value(nesting + 1)?;
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(byte) if byte == close => {
                            self.at += 1;
                            return Ok(());
                        }
                        _ => return Err(self.unexpected("',' or the end of the value")),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                // A plain integer ("T", a time) is a number: no float parse.
                if let Some((_, len)) = self.digit_run() {
                    if !matches!(self.text.get(self.at + len), Some(b'-' | b'+')) {
                        self.at += len;
                        return Ok(());
                    }
                }
                let start = self.at;
                while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') =
                    self.text.get(self.at)
                {
                    self.at += 1;
                }
                let number = std::str::from_utf8(&self.text[start..self.at]).unwrap_or("");
                number
                    .parse::<f64>()
                    .map(drop)
                    .map_err(|_| malformed(format!("'{number}' is not a number")))
            }
            Some(b't' | b'f' | b'n') => {
                for literal in [&b"true"[..], b"false", b"null"] {
                    if self.text[self.at..].starts_with(literal) {
                        self.at += literal.len();
                        return Ok(());
                    }
                }
                Err(self.unexpected("a value"))
            }
            _ => Err(self.unexpected("a value")),
        }
    }

    /// `[["price", "size"], ...]` into `out`, each price checked against the grid.
    fn levels(&mut self, grid: &PriceGrid, name: &str, out: &mut Vec<Level>) -> CoreResult<()> {
        out.clear();
        self.expect(b'[')?;
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        // Tick scales past 10 (no real instrument) take the general path only.
        let tick = grid.tick_digits();
        let quick = tick.1 <= 10;
        if quick && self.shaped_levels(tick, name, out)? {
            return Ok(());
        }
        loop {
            if let Some(level) = quick.then(|| self.quick_level(tick)).flatten() {
                out.push(level);
                match self.text.get(self.at) {
                    Some(b',') => {
                        self.at += 1;
                        continue;
                    }
                    Some(b']') => {
                        self.at += 1;
                        return Ok(());
                    }
                    // Whitespace or anything else: the general path below decides.
                    _ => {}
                }
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b']') => {
                        self.at += 1;
                        return Ok(());
                    }
                    _ => {
                        let index = out.len() - 1;
                        return Err(self.unexpected(&format!("',' or ']' after {name}[{index}]")));
                    }
                }
                continue;
            }
            let index = out.len();
            let field = || format!("{name}[{index}]");
            self.expect(b'[')?;
            let price = match self.quick_decimal() {
                Some((mantissa, scale, text)) => match grid.ticks_of_digits(mantissa, scale) {
                    Some(ticks) => ticks,
                    None => grid.ticks_of_text(ascii(text), &field)?,
                },
                None => match self.decimal_string()? {
                    DecimalText::Digits {
                        mantissa,
                        scale,
                        text,
                    } => match grid.ticks_of_digits(mantissa, scale) {
                        Some(ticks) => ticks,
                        None => grid.ticks_of_text(ascii(text), &field)?,
                    },
                    DecimalText::Text(text) => grid.ticks_of_text(text, &field)?,
                },
            };
            self.expect(b',')?;
            let size = match self.quick_decimal() {
                Some((mantissa, scale, text)) => match size_of_digits(mantissa, scale) {
                    Some(size) => size,
                    None => size_of_text(ascii(text), &field)?,
                },
                None => match self.decimal_string()? {
                    DecimalText::Digits {
                        mantissa,
                        scale,
                        text,
                    } => match size_of_digits(mantissa, scale) {
                        Some(size) => size,
                        None => size_of_text(ascii(text), &field)?,
                    },
                    DecimalText::Text(text) => size_of_text(text, &field)?,
                },
            };
            self.expect(b']')?;
            out.push((price, size));
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected(&format!("',' or ']' after {}", field()))),
            }
        }
    }

    /// One object: a `depthUpdate`, or the combined-stream envelope whose `data` is one.
    fn event(
        &mut self,
        grid: &PriceGrid,
        bids: &mut Vec<Level>,
        asks: &mut Vec<Level>,
        nesting: usize,
    ) -> CoreResult<DepthHeader> {
        let mut header = DepthHeader::default();
        let mut data = None;
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                let key = if let Some(key) = self.short_key() {
                    Some(key)
                } else {
                    let key = self.string_bytes()?;
                    self.expect(b':')?;
                    key
                };
                let duplicate = |key: &str| malformed(format!("field '{key}' appears twice"));
                match key {
                    Some(b"data") if nesting == 0 => {
                        if data.is_some() {
                            return Err(duplicate("data"));
                        }
                        data = Some(self.event(grid, bids, asks, 1)?);
                    }
                    Some(b"E") => {
                        let time = i64::try_from(self.unsigned("E")?)
                            .map_err(|_| malformed("E is out of range"))?;
                        header.event_time_ms = Some(time);
                    }
                    Some(key @ (b"U" | b"u" | b"pu")) => {
                        let (key, slot) = match key {
                            b"U" => ("U", &mut header.first_update_id),
                            b"u" => ("u", &mut header.last_update_id),
                            _ => ("pu", &mut header.prev_last_update_id),
                        };
                        if slot.replace(self.unsigned(key)?).is_some() {
                            return Err(duplicate(key));
                        }
                    }
                    Some(b"b") => {
                        if std::mem::replace(&mut header.has_bids, true) {
                            return Err(duplicate("b"));
                        }
                        self.levels(grid, "bids", bids)?;
                    }
                    Some(b"a") => {
                        if std::mem::replace(&mut header.has_asks, true) {
                            return Err(duplicate("a"));
                        }
                        self.levels(grid, "asks", asks)?;
                    }
                    _ => self.skip_value(nesting + 1)?,
                }
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b'}') => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.unexpected("',' or '}'")),
                }
            }
        }
        Ok(data.unwrap_or(header))
    }
}

/// Parses a `depthUpdate` event (bare or enveloped) and applies it to `book` (which must use
/// Binance sequencing). `bids` and `asks` are scratch buffers, reused between calls. The whole
/// message is validated before anything is applied.
pub fn apply_depth_json(
    book: &mut OrderBook,
    text: &str,
    receive_time_ns: Option<i64>,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
    layouts: &mut LevelLayouts,
) -> CoreResult<ApplyOutcome> {
    bids.clear();
    asks.clear();
    let mut scanner = Scanner::new(text.as_bytes(), layouts);
    let header = scanner.event(book.grid(), bids, asks, 0)?;
    if scanner.peek().is_some() {
        return Err(scanner.unexpected("the end of the message"));
    }
    let missing = |field: &str| malformed(format!("missing field '{field}'"));
    if !header.has_bids {
        return Err(missing("b"));
    }
    if !header.has_asks {
        return Err(missing("a"));
    }
    book.apply_binance_diff(&BinanceDiff {
        first_update_id: header.first_update_id.ok_or_else(|| missing("U"))?,
        last_update_id: header.last_update_id.ok_or_else(|| missing("u"))?,
        prev_last_update_id: header.prev_last_update_id.ok_or_else(|| missing("pu"))?,
        bids,
        asks,
        exchange_time_ns: header.event_time_ms.map(|ms| ms * 1_000_000),
        receive_time_ns,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::Just;
    use proptest::strategy::Strategy;

    use super::*;
    use crate::book::Sequencing;
    use crate::price::PriceGrid;
    use crate::side::Side;

    #[test]
    fn applies_bare_and_enveloped_events_and_rejects_bad_ones_whole() {
        let mut book = OrderBook::new(
            "BTCUSDT",
            PriceGrid::from_text("0.1").unwrap(),
            Sequencing::Binance,
        );
        book.apply_snapshot(Some(100), &[(600_000, 1.0)], &[(600_010, 1.0)], None, None)
            .unwrap();
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        let mut layouts = LevelLayouts::default();
        let bare = r#"{"e":"depthUpdate","E":1723161256299,"T":1,"s":"BTCUSDT","U":95,"u":105,"pu":94,"b":[["60000.10","2.5"]],"a":[["60001.00","0.000"]]}"#;
        assert_eq!(
            apply_depth_json(&mut book, bare, Some(7), &mut bids, &mut asks, &mut layouts).unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(book.best_bid(), Some((600_001, 2.5)));
        assert_eq!(book.level_count(Side::Sell), 0);
        assert_eq!(book.exchange_time_ns(), Some(1_723_161_256_299_000_000));
        let enveloped = r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":2,"U":106,"u":110,"pu":105,"b":[],"a":[["60002.00","1.5"]]}}"#;
        assert_eq!(
            apply_depth_json(
                &mut book,
                enveloped,
                None,
                &mut bids,
                &mut asks,
                &mut layouts
            )
            .unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(book.best_ask(), Some((600_020, 1.5)));
        // An off-tick price anywhere: nothing applied, and the sequence is not consumed.
        let bad = r#"{"e":"depthUpdate","E":3,"U":111,"u":112,"pu":110,"b":[["60000.20","1"]],"a":[["60002.05","1"]]}"#;
        assert!(matches!(
            apply_depth_json(&mut book, bad, None, &mut bids, &mut asks, &mut layouts),
            Err(CoreError::OffTick { .. })
        ));
        assert_eq!(book.best_bid(), Some((600_001, 2.5)));
        assert_eq!(book.last_update_id(), Some(110));
        assert!(matches!(
            apply_depth_json(
                &mut book,
                "{not json",
                None,
                &mut bids,
                &mut asks,
                &mut layouts
            ),
            Err(CoreError::Malformed(_))
        ));
        let gap = r#"{"e":"depthUpdate","E":4,"U":120,"u":121,"pu":119,"b":[],"a":[]}"#;
        assert_eq!(
            apply_depth_json(&mut book, gap, None, &mut bids, &mut asks, &mut layouts).unwrap(),
            ApplyOutcome::Gap
        );
    }

    /// A depth event written in any key order, with extra fields, either envelope, any
    /// whitespace: the scanner reads what `serde_json` reads. Every truncation is an error.
    fn event_text(
        bids: &[(u32, u32)],
        asks: &[(u32, u32)],
        ids: (u64, u64, u64),
        order: &[usize],
        spaced: bool,
        enveloped: bool,
    ) -> String {
        let level = |(price, size): &(u32, u32)| {
            serde_json::json!([
                format!("{}.{}", price / 10, price % 10),
                format!("{}.{:03}", size / 1000, size % 1000)
            ])
        };
        let fields = [
            ("e", serde_json::json!("depthUpdate")),
            ("E", serde_json::json!(1_723_161_256_299_u64)),
            ("T", serde_json::json!(1_723_161_256_298_u64)),
            ("s", serde_json::json!("BTC\"USDT")),
            ("U", serde_json::json!(ids.0)),
            ("u", serde_json::json!(ids.1)),
            ("pu", serde_json::json!(ids.2)),
            (
                "b",
                serde_json::Value::Array(bids.iter().map(level).collect()),
            ),
            (
                "a",
                serde_json::Value::Array(asks.iter().map(level).collect()),
            ),
            (
                "x",
                serde_json::json!({"nested": [1.5e3, null, true, false, {"k": "v"}]}),
            ),
        ];
        let separator = if spaced { " ,\n\t" } else { "," };
        let body = order
            .iter()
            .map(|&i| {
                format!(
                    "\"{}\":{}{}",
                    fields[i].0,
                    if spaced { " " } else { "" },
                    fields[i].1
                )
            })
            .collect::<Vec<_>>()
            .join(separator);
        let event = format!("{{{body}}}");
        if enveloped {
            format!("{{\"stream\":\"btcusdt@depth@0ms\", \"data\": {event}}}")
        } else {
            event
        }
    }

    /// The byte-at-a-time reading of a plain decimal, for comparison: (mantissa, scale, end).
    fn decimal_by_bytes(text: &[u8], start: usize) -> Option<(i64, u32, usize)> {
        let (mut mantissa, mut digits, mut scale, mut point) = (0_i64, 0, 0, false);
        let mut at = start;
        while let Some(&byte) = text.get(at) {
            if byte.is_ascii_digit() {
                mantissa = mantissa * 10 + i64::from(byte - b'0');
                digits += 1;
                scale += u32::from(point);
            } else if byte == b'.' && !point {
                point = true;
            } else {
                break;
            }
            at += 1;
        }
        (text.get(at) == Some(&b'"') && (1..=18).contains(&digits)).then_some((mantissa, scale, at))
    }

    #[test]
    fn eight_bytes_at_a_time_reads_what_the_byte_loop_reads() {
        let mut cases: Vec<String> = [
            "0",
            "5",
            "1234567",
            "12345678",
            "0.1",
            "56789.10",
            "0.001",
            "0.00000001",
            "9.9999999",
            "1234567.1234567",
            "1234567.12345678",
            "5.",
            ".5",
            "1.2.3",
            "12a",
            "1e5",
            "-1",
            "",
            "00012.500",
            "9999999.9999999",
        ]
        .iter()
        .map(|case| (*case).to_owned())
        .collect();
        let mut state: u64 = 1;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let whole = 1 + (state >> 60) as usize % 9;
            let fraction = (state >> 56) as usize % 10;
            let digits: String = (0..whole + fraction)
                .map(|i| char::from(b'0' + ((state >> (i % 50)) % 10) as u8))
                .collect();
            cases.push(if fraction == 0 {
                digits
            } else {
                format!("{}.{}", &digits[..whole], &digits[whole..])
            });
        }
        for case in &cases {
            for tail in ["\"]", "\"]],[\"1\",\"2\"]]}", "\""] {
                let text = format!("[\"{case}{tail}");
                let fast = short_decimal(text.as_bytes(), 2);
                let slow = decimal_by_bytes(text.as_bytes(), 2);
                if let Some(fast) = fast {
                    assert_eq!(Some(fast), slow, "{text}");
                }
                // The scanner's reading (fast path, else the byte loop) agrees with the bytes.
                let mut layouts = LevelLayouts::default();
                let mut scanner = Scanner::new(text.as_bytes(), &mut layouts);
                scanner.at = 1;
                let read = match scanner.quick_decimal() {
                    Some((mantissa, scale, text)) => Ok(DecimalText::Digits {
                        mantissa,
                        scale,
                        text,
                    }),
                    None => scanner.decimal_string(),
                };
                match (read, slow) {
                    (
                        Ok(DecimalText::Digits {
                            mantissa, scale, ..
                        }),
                        Some((m, s, end)),
                    ) => {
                        assert_eq!((mantissa, scale, scanner.at), (m, s, end + 1), "{text}");
                    }
                    (Ok(DecimalText::Digits { .. }), None) => panic!("{text} read as digits"),
                    (_, Some(_)) => panic!("{text} not read as digits"),
                    (_, None) => {}
                }
            }
        }
    }

    /// The one-step level reader on every grid shape (tick digits 1 and not, scales 0–3) and
    /// numbers with decimals past the tick (zeros or not), too many digits, a zero price, at the
    /// end of the text (the padded window) or not: whenever it reads a level, it reads what the
    /// general path reads, and it never reads one the general path rejects.
    #[test]
    fn one_step_level_reads_what_the_general_path_reads() {
        let numbers = [
            "0",
            "5",
            "0.0",
            "0.1",
            "0.10",
            "0.15",
            "0.25",
            "0.50",
            "1",
            "10",
            "12.5",
            "12.50",
            "12.500",
            "12.501",
            "59342.10",
            "59342.1",
            "59342.15",
            "59342.00",
            "1234567",
            "1234567.1",
            "123456.78",
            "12345678",
            "0.001",
            "0.0010",
            "9.9999999",
            "00012.500",
            "1.2345678",
            "0.123",
            "7.",
            ".5",
            "1.2.3",
            "1e5",
        ];
        let tail_padding = ["]}", &"x".repeat(LEVEL_WINDOW)];
        let mut read = 0;
        for tick in ["1", "0.1", "0.01", "0.001", "0.25", "0.5", "5"] {
            let grid = PriceGrid::from_text(tick).unwrap();
            for price in numbers {
                for size in numbers {
                    for padding in tail_padding {
                        let text = format!("[\"{price}\",\"{size}\"]{padding}");
                        let mut layouts = LevelLayouts::default();
                        let mut scanner = Scanner::new(text.as_bytes(), &mut layouts);
                        let Some((ticks, got_size)) = scanner.quick_level(grid.tick_digits())
                        else {
                            continue;
                        };
                        read += 1;
                        let expected_ticks = grid.ticks_of_text(price, &String::new);
                        let expected_size = size_of_text(size, &String::new);
                        assert_eq!(expected_ticks.ok(), Some(ticks), "{text} on {tick}");
                        assert_eq!(
                            expected_size.ok().map(f64::to_bits),
                            Some(got_size.to_bits()),
                            "{text}"
                        );
                        assert_eq!(scanner.at, text.len() - padding.len(), "{text}");
                    }
                }
            }
        }
        assert!(
            read > 1_000,
            "the one-step path reads the common shapes ({read})"
        );
    }

    /// A number string of `whole` digits and `decimals` decimals (no point when 0), its digits
    /// taken from `digits` in turn.
    fn number_text(whole: usize, decimals: usize, digits: &mut impl Iterator<Item = u8>) -> String {
        let mut text: String = (0..whole)
            .map(|_| char::from(b'0' + digits.next().unwrap_or(1)))
            .collect();
        if decimals > 0 {
            text.push('.');
            text.extend((0..decimals).map(|_| char::from(b'0' + digits.next().unwrap_or(0))));
        }
        text
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// A side's levels in a few layouts (so that kept layouts are hit, missed and replaced,
        /// across two messages), with decimals past the tick zero or not, zero prices, and maybe
        /// one byte of the text replaced by anything: the layout reader and the general path
        /// together read exactly what a JSON parser and the grid read, and reject what they
        /// reject.
        #[test]
        fn level_layouts_read_what_the_general_path_reads(
            layouts_used in proptest::collection::vec((1usize..9, 0usize..7, 1usize..9, 0usize..7), 1..4),
            picks in proptest::collection::vec(0usize..4, 1..12),
            digits in proptest::collection::vec(proptest::prelude::prop_oneof![3 => Just(0u8), 7 => 0u8..10], 200),
            corrupt in proptest::option::of((0usize..400, proptest::prelude::any::<u8>())),
            tick in proptest::sample::select(vec!["1", "0.1", "0.01", "0.001", "0.25", "0.5", "5"]),
            split in 0usize..12,
        ) {
            let grid = PriceGrid::from_text(tick).unwrap();
            let mut digits = digits.into_iter().cycle();
            let levels: Vec<String> = picks
                .iter()
                .map(|pick| {
                    let (pw, pd, sw, sd) = layouts_used[pick % layouts_used.len()];
                    let price = number_text(pw, pd, &mut digits);
                    let size = number_text(sw, sd, &mut digits);
                    format!("[\"{price}\",\"{size}\"]")
                })
                .collect();
            // Two messages (one layout cache), each one side's list, then what follows it.
            let split = split.min(levels.len());
            let mut texts = [
                format!("[{}]}}", levels[..split].join(",")),
                format!("[{}],\"a\":[]}}", levels[split..].join(",")),
            ];
            if let Some((at, byte)) = corrupt {
                let text = &mut texts[at % 2];
                let mut bytes = text.clone().into_bytes();
                let index = (at / 2) % bytes.len();
                bytes[index] = byte;
                *text = String::from_utf8_lossy(&bytes).into_owned();
            }
            let mut layouts = LevelLayouts::default();
            for text in &texts {
                let expected: Option<Vec<Level>> = serde_json::Deserializer::from_str(text)
                    .into_iter::<serde_json::Value>()
                    .next()
                    .and_then(Result::ok)
                    .and_then(|value| {
                        value.as_array()?.iter().map(|pair| {
                            let pair = pair.as_array().filter(|pair| pair.len() == 2)?;
                            let price = grid.ticks_of_text(pair[0].as_str()?, &String::new).ok()?;
                            let size = size_of_text(pair[1].as_str()?, &String::new).ok()?;
                            Some((price, size))
                        }).collect()
                    });
                let mut scanner = Scanner::new(text.as_bytes(), &mut layouts);
                let mut got = Vec::new();
                let read = scanner.levels(&grid, "bids", &mut got).map(|()| got);
                match (read, expected) {
                    (Ok(got), Some(expected)) => {
                        let bits = |levels: &[Level]| -> Vec<(i64, u64)> {
                            levels.iter().map(|(ticks, size)| (*ticks, size.to_bits())).collect()
                        };
                        proptest::prop_assert_eq!(bits(&got), bits(&expected), "{}", text);
                    }
                    (Err(_), None) => {}
                    (read, expected) => proptest::prop_assert!(
                        false,
                        "{text}: read {read:?}, a JSON parser and the grid read {expected:?}"
                    ),
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn scanner_reads_what_a_json_parser_reads(
            bids in proptest::collection::vec((1u32..1_000_000, 0u32..100_000), 0..12),
            asks in proptest::collection::vec((1u32..1_000_000, 0u32..100_000), 0..12),
            first in proptest::prelude::prop_oneof![1u64..1_000_000, 1u64..(u64::MAX / 2)],
            order in Just((0..10).collect::<Vec<usize>>()).prop_shuffle(),
            spaced: bool,
            enveloped: bool,
        ) {
            let text = event_text(&bids, &asks, (first, first + 5, first - 1), &order, spaced, enveloped);
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            let event = if enveloped { &parsed["data"] } else { &parsed };
            let grid = PriceGrid::from_text("0.1").unwrap();
            let expect = |levels: &serde_json::Value| -> Vec<Level> {
                levels.as_array().unwrap().iter().map(|pair| {
                    let price = pair[0].as_str().unwrap();
                    let size: f64 = pair[1].as_str().unwrap().parse().unwrap();
                    (grid.ticks_of_text(price, &String::new).unwrap(), size)
                }).collect()
            };
            let (mut got_bids, mut got_asks) = (Vec::new(), Vec::new());
            let mut layouts = LevelLayouts::default();
            let mut scanner = Scanner::new(text.as_bytes(), &mut layouts);
            let header = scanner.event(&grid, &mut got_bids, &mut got_asks, 0).unwrap();
            proptest::prop_assert_eq!(got_bids, expect(&event["b"]));
            proptest::prop_assert_eq!(got_asks, expect(&event["a"]));
            proptest::prop_assert_eq!(header.first_update_id, event["U"].as_u64());
            proptest::prop_assert_eq!(header.last_update_id, event["u"].as_u64());
            proptest::prop_assert_eq!(header.prev_last_update_id, event["pu"].as_u64());
            proptest::prop_assert_eq!(header.event_time_ms, event["E"].as_i64());
            // Every proper prefix is an error, never a panic or a partial read.
            let mut book = OrderBook::new("BTCUSDT", grid, Sequencing::Binance);
            let (mut scratch_bids, mut scratch_asks) = (Vec::new(), Vec::new());
            for end in 0..text.len() {
                if text.is_char_boundary(end) {
                    proptest::prop_assert!(
                        apply_depth_json(&mut book, &text[..end], None, &mut scratch_bids, &mut scratch_asks, &mut LevelLayouts::default()).is_err(),
                        "prefix {} accepted", &text[..end]
                    );
                }
            }
        }
    }
}
