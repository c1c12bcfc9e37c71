//! SVG plots of a report with `plotters` (SVG backend only: text is written as SVG `<text>`
//! and laid out by the viewer, so no font library is needed): throughput per system and
//! workload, latency percentiles, throughput against clients and value size, restart time
//! against key count.
//!
//! Invariants: a plot only draws what the report holds (a system without a point is absent,
//! not zero); every file is written whole or the call fails with the file's name.

use crate::report::{Op, Report, Workload};
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("plotting {file}: {message}")]
pub struct PlotError {
    pub file: PathBuf,
    pub message: String,
}

type DrawResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// One named line of (x, y) points.
type Series = (String, Vec<(f64, f64)>);

const W: u32 = 1100;
const H: u32 = 480;

/// Writes every plot the report has data for into `dir`; returns the files written.
pub fn write_all(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let mut files = Vec::new();
    let mut run = |name: &str, f: &dyn Fn(&Path) -> DrawResult| -> Result<(), PlotError> {
        let file = dir.join(name);
        f(&file).map_err(|e| PlotError {
            file: file.clone(),
            message: e.to_string(),
        })?;
        files.push(file);
        Ok(())
    };
    if !report.points.is_empty() {
        run("throughput.svg", &|f| throughput_bars(report, f))?;
        run("latency.svg", &|f| latency_percentiles(report, f))?;
    }
    let by_clients = |op: Op| {
        growth(
            report,
            op,
            |w| w.value_size == 16 && w.pipeline == 1,
            |w| w.clients as f64,
        )
    };
    if by_clients(Op::Set).iter().any(|(_, v)| v.len() > 1) {
        run("clients.svg", &|f| {
            two_panels(
                f,
                "clients",
                true,
                [("SET", by_clients(Op::Set)), ("GET", by_clients(Op::Get))],
            )
        })?;
    }
    let by_size = |op: Op| {
        growth(
            report,
            op,
            |w| w.clients == 50 && w.pipeline == 1,
            |w| w.value_size as f64,
        )
    };
    if by_size(Op::Set).iter().any(|(_, v)| v.len() > 1) {
        run("value_size.svg", &|f| {
            two_panels(
                f,
                "value size (bytes)",
                true,
                [("SET", by_size(Op::Set)), ("GET", by_size(Op::Get))],
            )
        })?;
    }
    let restart = restart_series(report);
    if restart.iter().any(|(_, v)| v.len() > 1) {
        run("restart.svg", &|f| {
            line_chart(
                &SVGBackend::new(f, (W / 2, H)).into_drawing_area(),
                "restart time against key count",
                "keys",
                "seconds until it serves",
                &restart,
                true,
            )
        })?;
    }
    Ok(files)
}

/// Per system, (x, req/s) of the `op` points that `pick` selects.
fn growth(
    report: &Report,
    op: Op,
    pick: impl Fn(&Workload) -> bool,
    x: impl Fn(&Workload) -> f64,
) -> Vec<Series> {
    report
        .systems
        .iter()
        .map(|s| {
            let mut pts: Vec<(f64, f64)> = report
                .points
                .iter()
                .filter(|p| p.system == s.id && p.workload.op == op && pick(&p.workload))
                .map(|p| (x(&p.workload), p.ours.rps))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (s.id.clone(), pts)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn restart_series(report: &Report) -> Vec<Series> {
    report
        .systems
        .iter()
        .map(|s| {
            let mut pts: Vec<(f64, f64)> = report
                .figures
                .iter()
                .filter(|f| f.system == s.id && f.id.starts_with("restart_"))
                .filter_map(|f| {
                    Some((f.id.strip_prefix("restart_")?.parse::<f64>().ok()?, f.value))
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (s.id.clone(), pts)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn color(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

fn two_panels(
    file: &Path,
    x_desc: &str,
    log_x: bool,
    panels: [(&str, Vec<Series>); 2],
) -> DrawResult {
    let root = SVGBackend::new(file, (W, H)).into_drawing_area();
    root.fill(&WHITE)?;
    let halves = root.split_evenly((1, 2));
    for (area, (op, series)) in halves.iter().zip(panels.iter()) {
        line_chart(
            area,
            &format!("{op}: throughput against {x_desc}"),
            x_desc,
            "requests/s",
            series,
            log_x,
        )?;
    }
    root.present()?;
    Ok(())
}

fn line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    log_x: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let xs = series.iter().flat_map(|(_, v)| v.iter().map(|p| p.0));
    let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let y_max = series
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let (x_min, x_max) = if x_min < x_max {
        (x_min, x_max)
    } else {
        (x_min.max(1.0) / 2.0, x_max.max(1.0) * 2.0)
    };
    let y_range = 0.0..(y_max * 1.1).max(1.0);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .draw()?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let c = color(i);
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }};
    }
    if log_x {
        draw!(builder.build_cartesian_2d((x_min * 0.8..x_max * 1.25).log_scale(), y_range)?);
    } else {
        draw!(builder.build_cartesian_2d(x_min..x_max, y_range)?);
    }
    area.present()?;
    Ok(())
}

/// Grouped bars: one group per workload (in measurement order), one bar per system.
fn throughput_bars(report: &Report, file: &Path) -> DrawResult {
    let mut workloads: Vec<Workload> = Vec::new();
    for p in &report.points {
        if !workloads.contains(&p.workload) {
            workloads.push(p.workload);
        }
    }
    let systems: Vec<&str> = report
        .systems
        .iter()
        .map(|s| s.id.as_str())
        .filter(|id| report.points.iter().any(|p| p.system == *id))
        .collect();
    let y_max = report.points.iter().map(|p| p.ours.rps).fold(0.0, f64::max);
    let width = (W as usize).max(workloads.len() * 70 + 200) as u32;
    let root = SVGBackend::new(file, (width, H + 80)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = workloads.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "throughput per system and workload (load generator)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(110)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n as f64, (1.0..(y_max * 2.0).max(10.0)).log_scale())?;
    let labels: Vec<String> = workloads.iter().map(|w| w.label()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(1))
        .x_label_formatter(&|x: &f64| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.26 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_label_style(
            ("sans-serif", 11)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .y_desc("requests/s (log)")
        .draw()?;
    let bar = 0.8 / systems.len().max(1) as f64;
    for (si, sys) in systems.iter().enumerate() {
        let c = color(si);
        let bars: Vec<Rectangle<(f64, f64)>> = workloads
            .iter()
            .enumerate()
            .filter_map(|(wi, w)| {
                let p = report
                    .points
                    .iter()
                    .find(|p| p.system == *sys && p.workload == *w)?;
                let x0 = wi as f64 + 0.1 + si as f64 * bar;
                Some(Rectangle::new(
                    [(x0, 1.0), (x0 + bar, p.ours.rps.max(1.0))],
                    c.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(*sys)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// p50, p99 and p99.9 per system for the SET and GET points at 50 clients, 16-byte values,
/// no pipeline (the headline workloads), on a log scale.
fn latency_percentiles(report: &Report, file: &Path) -> DrawResult {
    let root = SVGBackend::new(file, (W, H)).into_drawing_area();
    root.fill(&WHITE)?;
    let halves = root.split_evenly((1, 2));
    for (area, op) in halves.iter().zip([Op::Set, Op::Get]) {
        let w = Workload {
            op,
            value_size: 16,
            clients: 50,
            pipeline: 1,
        };
        let rows: Vec<(&str, [f64; 3])> = report
            .points
            .iter()
            .filter(|p| p.workload == w)
            .map(|p| {
                (
                    p.system.as_str(),
                    [p.ours.p50_ms, p.ours.p99_ms, p.ours.p999_ms],
                )
            })
            .collect();
        let y_max = rows.iter().flat_map(|r| r.1).fold(0.01, f64::max);
        let y_min = rows
            .iter()
            .flat_map(|r| r.1)
            .filter(|v| *v > 0.0)
            .fold(y_max, f64::min);
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{} latency percentiles", w.label()),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..3.0, (y_min / 2.0..y_max * 2.0).log_scale())?;
        let names = ["p50", "p99", "p99.9"];
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(3)
            .x_label_formatter(&|x: &f64| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 0.26 {
                    names.get(i).map(|s| s.to_string()).unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("milliseconds (log)")
            .draw()?;
        let bar = 0.8 / rows.len().max(1) as f64;
        for (si, (sys, v)) in rows.iter().enumerate() {
            let c = color(
                report
                    .systems
                    .iter()
                    .position(|s| s.id == *sys)
                    .unwrap_or(si),
            );
            let bars = (0..3).map(|k| {
                let x0 = k as f64 + 0.1 + si as f64 * bar;
                Rectangle::new(
                    [(x0, y_min / 2.0), (x0 + bar, v[k].max(y_min / 2.0))],
                    c.filled(),
                )
            });
            chart
                .draw_series(bars)?
                .label(*sys)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Point, System};
    use crate::stats::Summary;

    #[test]
    fn writes_svg_files_with_the_systems_named() {
        let dir = std::env::temp_dir().join(format!("redraft-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Report::default();
        for id in ["redis-always", "redraft-3"] {
            r.systems.push(System {
                id: id.into(),
                label: id.into(),
                resp: true,
                consensus: false,
            });
            for (op, clients) in [(Op::Set, 1), (Op::Set, 50), (Op::Get, 1), (Op::Get, 50)] {
                r.points.push(Point {
                    system: id.into(),
                    workload: Workload {
                        op,
                        value_size: 16,
                        clients,
                        pipeline: 1,
                    },
                    ours: Summary {
                        requests: 10,
                        errors: 0,
                        misses: 0,
                        seconds: 1.0,
                        rps: 1000.0 * clients as f64,
                        p50_ms: 0.1,
                        p99_ms: 1.0,
                        p999_ms: 5.0,
                    },
                    ours_cpu: None,
                    redis_benchmark: None,
                });
            }
        }
        let files = write_all(&r, &dir).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["throughput.svg", "latency.svg", "clients.svg"]);
        for f in &files {
            let svg = std::fs::read_to_string(f).unwrap();
            assert!(svg.starts_with("<svg"), "{}", f.display());
            assert!(svg.contains("redraft-3"), "{}", f.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
