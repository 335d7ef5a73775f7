//! LOLWUT [VERSION version] [arguments] (Redis 7.0's `lolwut.c`, `lolwut5.c`, `lolwut6.c`):
//! computer art and the server's version. Redis 7.0 itself prints only its version; VERSION 5
//! draws Georg Nees's "Schotter" in braille characters, VERSION 6 a city skyline in terminal
//! colours, each with Redis's arguments, limits and texts. The art is random where Redis's is
//! (the squares' tilt and shift below the second row, the buildings), and otherwise the same
//! bytes as redis-server's.

use super::ctx::{reply, ClientCtx};
use super::errors;
use super::spec::Plan;
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use bytes::Bytes;

/// The version every LOLWUT prints (INFO's `redis_version`).
const VERSION: &str = "7.0.15";

/// LOLWUT [VERSION version] [arguments].
pub fn lolwut(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    reply(run(args))
}

fn run(args: &[Bytes]) -> Reply {
    // VERSION picks the art of that major version (`<n>.0.0`, the number taken as a C
    // unsigned int); its arguments follow it.
    let (version, params) = if args.len() >= 3 && eq_ic(&args[1], "version") {
        match parse_i64(&args[2]) {
            Some(v) => (format!("{}.0.0", v as u32), &args[3..]),
            None => return Reply::err(errors::NOT_INTEGER),
        }
    } else {
        (VERSION.to_string(), &args[1..])
    };
    let v = version.as_bytes();
    let is = |major: u8, minor_nine: bool| v[0] == major && v[1] == b'.' && (v[2] == b'9') == minor_nine;
    let text = if is(b'5', false) || is(b'4', true) {
        schotter_command(params)
    } else if is(b'6', false) || is(b'5', true) {
        skyline_command(params)
    } else {
        Ok(format!("Redis ver. {VERSION}\n"))
    };
    match text {
        Ok(t) => Reply::Verbatim(Bytes::from(t)),
        Err(e) => e,
    }
}

/// The integer arguments, each defaulted when absent; an argument that is not one is an error.
fn numbers<const N: usize>(params: &[Bytes], defaults: [i64; N]) -> Result<[i64; N], Reply> {
    let mut out = defaults;
    for (slot, arg) in out.iter_mut().zip(params) {
        *slot = parse_i64(arg).ok_or_else(|| Reply::err(errors::NOT_INTEGER))?;
    }
    Ok(out)
}

/// C's `rand()`: a non-negative int.
fn rand() -> i32 {
    fastrand::i32(0..i32::MAX)
}

/// A grid of pixels, each a colour number (`lwCanvas`).
struct Canvas {
    width: i32,
    height: i32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: i32, height: i32, background: u8) -> Canvas {
        Canvas { width, height, pixels: vec![background; (width.max(0) * height.max(0)) as usize] }
    }

    fn inside(&self, x: i32, y: i32) -> bool {
        x >= 0 && x < self.width && y >= 0 && y < self.height
    }

    fn set(&mut self, x: i32, y: i32, color: u8) {
        if self.inside(x, y) {
            self.pixels[(x + y * self.width) as usize] = color;
        }
    }

    fn get(&self, x: i32, y: i32) -> u8 {
        if self.inside(x, y) {
            self.pixels[(x + y * self.width) as usize]
        } else {
            0
        }
    }

    /// Bresenham's line, both ends included.
    fn line(&mut self, mut x1: i32, mut y1: i32, x2: i32, y2: i32, color: u8) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let (sx, sy) = (if x1 < x2 { 1 } else { -1 }, if y1 < y2 { 1 } else { -1 });
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, color);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square of side `size` centred on (x, y), turned by `angle` radians. The arithmetic
    /// keeps C's float and double steps so that the corners land on Redis's pixels.
    // Redis divides by 1.4142135623, not by the full sqrt(2): kept, for the same pixels.
    #[allow(clippy::approx_constant)]
    fn square(&mut self, x: i32, y: i32, size: f32, angle: f32, color: u8) {
        // The square inscribed in a circle of radius 1 has sides of sqrt(2).
        let size = ((size as f64 / 1.4142135623) as f32 as f64).round() as f32;
        let mut k = (std::f64::consts::FRAC_PI_4 + angle as f64) as f32;
        let mut px = [0i32; 4];
        let mut py = [0i32; 4];
        for j in 0..4 {
            px[j] = ((k as f64).sin() * size as f64 + x as f64).round() as i32;
            py[j] = ((k as f64).cos() * size as f64 + y as f64).round() as i32;
            k = (k as f64 + std::f64::consts::FRAC_PI_2) as f32;
        }
        for j in 0..4 {
            self.line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4], color);
        }
    }
}

/// LOLWUT VERSION 5 [columns] [squares per row] [squares per column]: 66, 8 and 12 by default.
fn schotter_command(params: &[Bytes]) -> Result<String, Reply> {
    let [cols, per_row, per_col] = numbers(params, [66, 8, 12])?;
    let canvas = schotter(cols.clamp(1, 1000) as i32, per_row.clamp(1, 200) as i32, per_col.clamp(1, 200) as i32);
    let mut text = braille(&canvas);
    text.push_str(&format!("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {VERSION}\n"));
    Ok(text)
}

/// Schotter: rows of squares, turned and shifted more and more at random from the third row
/// down (order falling into chaos).
fn schotter(cols: i32, per_row: i32, per_col: i32) -> Canvas {
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32 + (padding * 2) as f32) as i32;
    let mut canvas = Canvas::new(width, height, 0);
    let unit = || rand() as f32 / i32::MAX as f32;
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut angle = 0.0f32;
            if y > 1 {
                let mut r1 = unit() / per_col as f32 * y as f32;
                let mut r2 = unit() / per_col as f32 * y as f32;
                let mut r3 = unit() / per_col as f32 * y as f32;
                for r in [&mut r1, &mut r2, &mut r3] {
                    if rand() % 2 == 1 {
                        *r = -*r;
                    }
                }
                angle = r1;
                sx = (sx as f32 + r2 * side / 3.0) as i32;
                sy = (sy as f32 + r3 * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle, 1);
        }
    }
    canvas
}

/// The canvas as braille characters, each 2x4 pixels (bits 0-2 the left column's first three,
/// 3-5 the right's, 6 and 7 the bottom pair), one text line per 4 pixel rows.
fn braille(canvas: &Canvas) -> String {
    let mut text = String::new();
    for y in (0..canvas.height).step_by(4) {
        for x in (0..canvas.width).step_by(2) {
            let dots = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)];
            let byte = dots
                .iter()
                .enumerate()
                .fold(0u32, |b, (bit, &(dx, dy))| b | (u32::from(canvas.get(x + dx, y + dy) != 0) << bit));
            text.push(char::from_u32(0x2800 + byte).unwrap_or(' '));
        }
        if y != canvas.height - 1 {
            text.push('\n');
        }
    }
    text
}

/// LOLWUT VERSION 6 [columns] [rows]: 80 and 20 by default.
fn skyline_command(params: &[Bytes]) -> Result<String, Reply> {
    let [cols, rows] = numbers(params, [80, 20])?;
    let mut canvas = Canvas::new(cols.clamp(1, 1000) as i32, rows.clamp(1, 1000) as i32, 3);
    skyline(&mut canvas);
    let mut text = String::new();
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            // Foreground and background both, for the same result in every terminal.
            let escape = match canvas.get(x, y) {
                1 => "0;90;100m",
                2 => "0;37;47m",
                3 => "0;97;107m",
                _ => "0;30;40m",
            };
            text.push_str(&format!("\x1b[{escape} \x1b[0m"));
        }
        if y != canvas.height - 1 {
            text.push('\n');
        }
    }
    text.push_str(&format!(
        "\nDedicated to the 8 bit game developers of past and present.\nOriginal 8 bit image from Plaguemon by hikikomori. Redis ver. {VERSION}\n"
    ));
    Ok(text)
}

/// One building standing on the canvas's bottom row.
struct Building {
    xoff: i32,
    width: i32,
    height: i32,
    windows: bool,
    color: u8,
}

fn building(canvas: &mut Canvas, b: &Building) {
    let bottom = canvas.height - 1;
    let top = bottom - b.height + 1;
    for y in (top..=bottom).rev() {
        for x in b.xoff..b.xoff + b.width {
            // The roof is four pixels narrower.
            if y == top && (x <= b.xoff + 1 || x >= b.xoff + b.width - 2) {
                continue;
            }
            let mut color = b.color;
            if b.windows && x > b.xoff + 1 && x < b.xoff + b.width - 2 && y > top + 1 && y < bottom - 1 {
                let (relx, rely) = (x - (b.xoff + 1), y - (top + 1));
                // Windows two pixels wide and one tall (a terminal's cells are not square).
                if (relx / 2) % 2 == 1 && rely % 2 == 1 {
                    loop {
                        color = 1 + (rand() % 2) as u8;
                        if color != b.color {
                            break;
                        }
                    }
                    if relx % 2 == 1 {
                        color = canvas.get(x - 1, y);
                    }
                }
            }
            canvas.set(x, y, color);
        }
    }
}

/// A skyline as in the parallax backgrounds of 8 bit games: two rows of grey buildings, the
/// lighter behind, then black buildings with lit windows in front.
fn skyline(canvas: &mut Canvas) {
    let h = canvas.height;
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < canvas.width {
            offset += rand() % 8;
            let width = 10 + rand() % 9;
            let height = if color == 2 { h / 2 + (rand() % h) / 2 } else { h / 2 + (rand() % h) / 3 };
            building(canvas, &Building { xoff: offset, width, height, windows: false, color });
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    let mut offset = -10;
    while offset < canvas.width {
        offset += rand() % 8;
        let mut width = 5 + rand() % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + (rand() % h) / 2;
        building(canvas, &Building { xoff: offset, width, height, windows: true, color: 0 });
        offset += width + 5;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(args: &[&str]) -> String {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        match run(&args) {
            Reply::Verbatim(b) => String::from_utf8(b.to_vec()).expect("utf-8"),
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn versions_arguments_and_limits() {
        assert_eq!(text(&["LOLWUT"]), "Redis ver. 7.0.15\n");
        assert_eq!(text(&["LOLWUT", "5"]), "Redis ver. 7.0.15\n", "arguments without VERSION are ignored");
        assert_eq!(text(&["lolwut", "version", "7"]), "Redis ver. 7.0.15\n");
        assert_eq!(text(&["LOLWUT", "VERSION", "-1"]), "Redis ver. 7.0.15\n", "4294967295.0.0");
        // Version 5, two rows (no randomness): 10 columns of 2x4-pixel cells per line.
        let five = text(&["LOLWUT", "VERSION", "5", "10", "2", "2"]);
        let lines: Vec<&str> = five.lines().collect();
        assert!(lines.len() >= 3, "{five}");
        // A line per four pixel rows (and an empty one where the last group ends short of the
        // last row, as Redis prints it).
        assert!(lines[..lines.len() - 1].iter().all(|l| l.is_empty() || l.chars().count() == 10), "{five}");
        assert!(five.ends_with("Georg Nees - schotter, plotter on paper, 1968. Redis ver. 7.0.15\n"));
        assert_eq!(five, text(&["LOLWUT", "VERSION", "5", "10", "2", "2"]), "no randomness in two rows");
        // Version 6: rows of cells, clamped to 1..=1000.
        let six = text(&["LOLWUT", "VERSION", "6", "0", "3"]);
        let lines: Vec<&str> = six.lines().collect();
        assert_eq!(lines.len(), 3 + 2);
        assert!(lines[..3].iter().all(|l| l.matches("\x1b[0m").count() == 1), "one column: {six:?}");
        assert!(six.ends_with("Original 8 bit image from Plaguemon by hikikomori. Redis ver. 7.0.15\n"));
    }

    #[test]
    fn bad_numbers_are_errors() {
        let args = |w: &[&str]| w.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect::<Vec<_>>();
        for bad in
            [&["LOLWUT", "VERSION", "x"][..], &["LOLWUT", "VERSION", "5", "1a"], &["LOLWUT", "VERSION", "6", "80", "z"]]
        {
            assert_eq!(run(&args(bad)), Reply::err(errors::NOT_INTEGER), "{bad:?}");
        }
    }
}
