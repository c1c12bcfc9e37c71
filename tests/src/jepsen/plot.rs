//! The run's picture, Jepsen style: throughput (top) and latency (bottom) over time, with
//! the fault windows shaded, as one SVG drawn with `plotters` (no system fonts needed:
//! the SVG backend writes text elements and the viewer draws them).
//!
//! The series come from the history alone ([`series`], pure and tested): completions per
//! second by outcome, and each operation's latency at its invocation time.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Result};
use lincheck::history::{History, Type};
use plotters::prelude::*;

use super::run::Window;

/// What the picture shows, computed from a history.
#[derive(Debug, Default, PartialEq)]
pub struct Series {
    /// Seconds from the first to the last event.
    pub seconds: f64,
    /// Width of a throughput bucket, seconds.
    pub bucket: f64,
    /// Completions per second in each bucket: ok, fail, info.
    pub rates: [Vec<f64>; 3],
    /// (invocation time s, latency ms) of each completed operation: ok, fail, info.
    pub latencies: [Vec<(f64, f64)>; 3],
}

fn slot(kind: Type) -> Option<usize> {
    match kind {
        Type::Ok => Some(0),
        Type::Fail => Some(1),
        Type::Info => Some(2),
        Type::Invoke => None,
    }
}

/// The series of a history (a completion is paired with its process's open invocation).
pub fn series(history: &History) -> Series {
    let secs = |ns: u64| ns as f64 / 1e9;
    let seconds = history.events.last().map_or(0.0, |e| secs(e.time)).max(1.0);
    let bucket = (seconds / 120.0).max(1.0);
    let n = ((seconds / bucket).ceil() as usize).max(1);
    let mut out = Series {
        seconds,
        bucket,
        rates: [vec![0.0; n], vec![0.0; n], vec![0.0; n]],
        latencies: Default::default(),
    };
    let mut open: HashMap<u64, u64> = HashMap::new();
    for e in &history.events {
        let Some(s) = slot(e.kind) else {
            open.insert(e.process, e.time);
            continue;
        };
        let b = ((secs(e.time) / bucket) as usize).min(n - 1);
        out.rates[s][b] += 1.0;
        if let Some(t0) = open.remove(&e.process) {
            let ms = (e.time.saturating_sub(t0)) as f64 / 1e6;
            out.latencies[s].push((secs(t0), ms.max(0.01)));
        }
    }
    // Counts to rates; the last bucket covers only what is left of the run.
    for rates in &mut out.rates {
        for (b, r) in rates.iter_mut().enumerate() {
            let width = (seconds - b as f64 * bucket).clamp(0.05, bucket);
            *r /= width;
        }
    }
    out
}

/// A window's colour, by the fault it shows.
fn window_colour(label: &str) -> RGBColor {
    match label.split_whitespace().next() {
        Some("partition") => RGBColor(70, 130, 230),
        Some("kill") => RGBColor(230, 60, 60),
        Some("pause") => RGBColor(160, 80, 200),
        Some("shuffle") => RGBColor(230, 180, 30),
        _ => RGBColor(60, 170, 90),
    }
}

const OUTCOMES: [(&str, RGBColor); 3] = [
    ("ok", RGBColor(40, 150, 60)),
    ("fail", RGBColor(200, 40, 40)),
    ("info", RGBColor(240, 150, 0)),
];

/// Draws the picture of `history` with `windows` shaded into an SVG file at `path`.
pub fn draw(path: &Path, title: &str, history: &History, windows: &[Window]) -> Result<()> {
    let s = series(history);
    let err = |e: &dyn std::fmt::Display| anyhow!("plot {}: {e}", path.display());
    let root = SVGBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(380);

    let max_rate = s.rates.iter().flatten().fold(1.0f64, |m, &r| m.max(r)) * 1.15;
    let mut chart = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..s.seconds, 0.0..max_rate)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("completions / s")
        .draw()
        .map_err(|e| err(&e))?;
    let shade = |w: &Window, lo: f64, hi: f64| {
        Rectangle::new(
            [(w.start as f64 / 1e9, lo), (w.end as f64 / 1e9, hi)],
            window_colour(&w.label).mix(0.18).filled(),
        )
    };
    chart
        .draw_series(windows.iter().map(|w| shade(w, 0.0, max_rate)))
        .map_err(|e| err(&e))?;
    let mut kinds_shown: Vec<&str> = Vec::new();
    for w in windows {
        let kind = w.label.split_whitespace().next().unwrap_or("fault");
        if !kinds_shown.contains(&kind) {
            kinds_shown.push(kind);
            let colour = window_colour(&w.label);
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(|e| err(&e))?
                .label(format!("{kind} (shaded)"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 18, y + 5)], colour.mix(0.3).filled())
                });
        }
    }
    for (i, (name, colour)) in OUTCOMES.iter().enumerate() {
        let points = s.rates[i]
            .iter()
            .enumerate()
            .map(|(b, &r)| ((b as f64 + 0.5) * s.bucket, r));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;

    let max_ms = s
        .latencies
        .iter()
        .flatten()
        .fold(10.0f64, |m, &(_, ms)| m.max(ms))
        * 1.5;
    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..s.seconds, (0.05f64..max_ms).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("time of invocation (s)")
        .y_desc("latency (ms, log)")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(windows.iter().map(|w| shade(w, 0.05, max_ms)))
        .map_err(|e| err(&e))?;
    for (i, (name, colour)) in OUTCOMES.iter().enumerate() {
        chart
            .draw_series(
                s.latencies[i]
                    .iter()
                    .map(|&(t, ms)| Circle::new((t, ms), 2, colour.mix(0.6).filled())),
            )
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| Circle::new((x + 9, y), 3, colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lincheck::history::Event;
    use serde_json::Value;

    fn ev(index: u64, process: u64, kind: Type, time_ms: u64) -> Event {
        Event {
            index,
            process,
            kind,
            f: "read".into(),
            key: Some("r0".into()),
            value: Value::Null,
            time: time_ms * 1_000_000,
            error: None,
            node: None,
        }
    }

    fn history() -> History {
        History {
            events: vec![
                ev(0, 1, Type::Invoke, 0),
                ev(1, 2, Type::Invoke, 100),
                ev(2, 1, Type::Ok, 20),
                ev(3, 2, Type::Info, 1500),
                ev(4, 3, Type::Invoke, 2000),
                ev(5, 3, Type::Fail, 2500),
            ],
        }
    }

    #[test]
    fn series_pair_completions_with_invocations_per_process() {
        let s = series(&history());
        assert_eq!(s.latencies[0], vec![(0.0, 20.0)]);
        assert_eq!(s.latencies[1], vec![(2.0, 500.0)]);
        assert_eq!(s.latencies[2], vec![(0.1, 1400.0)]);
        assert_eq!(s.bucket, 1.0);
        assert_eq!(s.rates[0][0], 1.0);
        assert_eq!(s.rates[2][1], 1.0);
        // The last bucket holds 0.5 s of the run: one completion in it is 2 per second.
        assert_eq!(s.rates[1][2], 2.0);
    }

    #[test]
    fn the_picture_is_an_svg_with_the_windows_shaded() {
        let dir = std::env::temp_dir().join(format!("jepsen-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plot.svg");
        let windows = [Window {
            label: "kill -9 leader n1".into(),
            start: 500_000_000,
            end: 1_500_000_000,
        }];
        draw(&path, "test run", &history(), &windows).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        assert!(svg.contains("test run") && svg.contains("kill (shaded)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
