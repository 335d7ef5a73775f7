//! LATENCY GRAPH <event>: Redis's ASCII sparkline of an event's latency samples (its
//! `latencyCommandGenSparkeline` over `sparkline.c`), byte for byte: a header line, an
//! 80-column rule, then four rows of `_o#|` filled under the curve per 80 samples, each
//! sample's age (`12s`, `3m`, `1h`, `2d`) written downwards below it.

/// Columns per block of samples.
const COLUMNS: usize = 80;
/// Rows of the curve.
const ROWS: usize = 4;
/// The fill charset: three steps per row, `|` under the curve.
const FILL: &[u8; 3] = b"_o#";
/// Empty rows between the curve and the labels.
const LABEL_MARGIN_TOP: usize = 1;

/// The graph of `event`: `samples` are (unix time s, ms) oldest first, `all_time_max` the
/// event's highest latency, `now_s` the current unix time.
pub fn render(event: &str, samples: &[(i64, i64)], all_time_max: i64, now_s: i64) -> String {
    let seq: Vec<(f64, String)> = samples.iter().map(|&(t, ms)| (ms as f64, age_label(now_s - t))).collect();
    let min = samples.iter().map(|s| s.1).min().unwrap_or(0);
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let mut out = format!("{event} - high {max} ms, low {min} ms (all time high {all_time_max} ms)\n");
    out.push_str(&"-".repeat(COLUMNS));
    out.push('\n');
    let (lo, hi) = (min as f64, max as f64);
    for (i, chunk) in seq.chunks(COLUMNS).enumerate() {
        if i != 0 {
            out.push('\n');
        }
        render_range(&mut out, chunk, lo, hi);
    }
    out
}

/// Redis's label for a sample `elapsed` seconds old.
fn age_label(elapsed: i64) -> String {
    match elapsed {
        e if e < 60 => format!("{e}s"),
        e if e < 3600 => format!("{}m", e / 60),
        e if e < 3600 * 24 => format!("{}h", e / 3600),
        e => format!("{}d", e / (3600 * 24)),
    }
}

/// `sparklineRenderRange` with `SPARKLINE_FILL`, for samples that all carry a label.
fn render_range(out: &mut String, samples: &[(f64, String)], min: f64, max: f64) {
    let relmax = if max - min == 0.0 { 1.0 } else { max - min };
    let steps = (FILL.len() * ROWS) as i64;
    let mut row = 0;
    loop {
        let mut done = true;
        let mut chars = vec![b' '; samples.len()];
        for (j, (value, label)) in samples.iter().enumerate() {
            // C's `(int)(relval*steps)/relmax`, truncated again into an int.
            let step = (((value - min) * steps as f64) as i64 as f64 / relmax) as i64;
            let step = step.clamp(0, steps - 1);
            if row < ROWS {
                let idx = step - ((ROWS - row - 1) * FILL.len()) as i64;
                done = false;
                if (0..FILL.len() as i64).contains(&idx) {
                    chars[j] = FILL[idx as usize];
                } else if idx >= FILL.len() as i64 {
                    chars[j] = b'|';
                }
            } else {
                if row - ROWS < LABEL_MARGIN_TOP {
                    done = false;
                    break;
                }
                if let Some(&c) = label.as_bytes().get(row - ROWS - LABEL_MARGIN_TOP) {
                    done = false;
                    chars[j] = c;
                }
            }
        }
        if done {
            return;
        }
        row += 1;
        out.push_str(&String::from_utf8_lossy(&chars));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of redis-server 7.0.15's `LATENCY GRAPH command` after DEBUG SLEEPs of 100, 200,
    /// 300 and 50 ms, 5, 4, 2 and 1 seconds before.
    #[test]
    fn samples_drawn_as_redis_draws_them() {
        let t = 1_796_468_343;
        let g = render("command", &[(t - 5, 100), (t - 4, 200), (t - 2, 300), (t - 1, 50)], 300, t);
        let want = format!(
            "command - high 300 ms, low 50 ms (all time high 300 ms)\n{}\n  # \n o| \n || \n#||_\n    \n5421\nssss\n",
            "-".repeat(80)
        );
        assert_eq!(g, want);
    }
}
