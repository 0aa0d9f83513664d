//! Drawing the series as SVG with plotters: one colour per subflow (the
//! legend names its addresses and ids), axes in seconds and in bytes or
//! bits per second with their units.

use plotters::prelude::*;

use super::series::{ConnSeries, Throughput};

/// Pixels.
const SIZE: (u32, u32) = (1200, 700);
/// The most points drawn per subflow; the JSON carries them all.
pub const MAX_POINTS: usize = 20_000;
/// The most event markers drawn (the first ones); the JSON carries them all.
pub const MAX_MARKERS: usize = 200;

/// Colours per subflow, in order (readable on white, distinct in print).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The colour of the subflow at position `i` in the connection's list.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the plot: {0}")]
pub struct RenderError(String);

fn err<E: std::fmt::Debug>(e: E) -> RenderError {
    RenderError(format!("{e:?}"))
}

/// 1536 -> "1.5 KB" (powers of 1000, as iperf3 and tcptrace print).
pub fn bytes_label(v: f64) -> String {
    unit_label(v, "B")
}

fn unit_label(v: f64, unit: &str) -> String {
    let a = v.abs();
    let (d, p) = if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    if x.fract() == 0.0 { format!("{x:.0} {p}{unit}") } else { format!("{x:.1} {p}{unit}") }
}

/// 0.0015 -> "1.5 ms".
fn seconds_label(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.3} s")
    } else if v >= 1e-3 {
        format!("{:.1} ms", v * 1e3)
    } else {
        format!("{:.0} µs", v * 1e6)
    }
}

/// Every `k`-th element so that at most `max` remain.
fn thin<T>(v: &[T], max: usize) -> impl Iterator<Item = &T> {
    let k = v.len().div_ceil(max.max(1)).max(1);
    v.iter().step_by(k)
}

/// The text row of each marker's label: markers closer in time than a
/// label's width go one row further down, so that no two labels overlap.
fn label_rows(markers: &[super::series::Marker], t_end: f64) -> Vec<usize> {
    let width = t_end * 0.15;
    let mut rows: Vec<usize> = Vec::with_capacity(markers.len());
    for (i, m) in markers.iter().enumerate() {
        let taken: Vec<usize> =
            markers[..i].iter().zip(&rows).filter(|(p, _)| (m.t - p.t).abs() < width).map(|(_, &r)| r).collect();
        rows.push((0..).find(|r| !taken.contains(r)).unwrap_or(0) % 12);
    }
    rows
}

/// DSN against time: data segments as dots per subflow, reinjections as
/// crosses, the DATA_ACK as a black line, events as labelled vertical lines.
pub fn dsn_svg(s: &ConnSeries) -> Result<String, RenderError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let t_end = s.data.iter().map(|p| p.t).chain(s.acks.iter().map(|a| a.t)).fold(0.0, f64::max).max(1e-3);
        let top = s
            .data
            .iter()
            .map(|p| (p.dsn + u64::from(p.len)) as f64)
            .chain(s.acks.iter().map(|a| a.ack as f64))
            .fold(0.0, f64::max)
            .max(1.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("MPTCP connection {}: data sequence ({} to peer)", s.conn, s.sender), ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..t_end * 1.02, 0.0..top * 1.06)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("relative data sequence number (bytes)")
            .y_label_formatter(&|v| bytes_label(*v))
            .x_label_formatter(&|v| format!("{v:.3}"))
            .draw()
            .map_err(err)?;
        let markers = &s.markers[..s.markers.len().min(MAX_MARKERS)];
        for (m, row) in markers.iter().zip(label_rows(markers, t_end)) {
            chart
                .draw_series(LineSeries::new([(m.t, 0.0), (m.t, top)], ShapeStyle::from(&RGBColor(150, 150, 150))))
                .map_err(err)?;
            let y = top * (1.04 - 0.035 * row as f64);
            chart.draw_series([Text::new(m.label.clone(), (m.t, y), ("sans-serif", 12).into_font())]).map_err(err)?;
        }
        for (i, sf) in s.subflows.iter().enumerate() {
            let c = colour(i);
            let pts: Vec<_> = s.data.iter().filter(|p| p.subflow == sf.id && !p.reinjection).collect();
            chart
                .draw_series(thin(&pts, MAX_POINTS).map(|p| Circle::new((p.t, p.dsn as f64), 2, c.filled())))
                .map_err(err)?
                .label(sf.label.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
            let re: Vec<_> = s.data.iter().filter(|p| p.subflow == sf.id && p.reinjection).collect();
            if !re.is_empty() {
                chart
                    .draw_series(thin(&re, MAX_POINTS).map(|p| Cross::new((p.t, p.dsn as f64), 4, c.stroke_width(2))))
                    .map_err(err)?
                    .label(format!("reinjections on sf {}", sf.id))
                    .legend(move |(x, y)| Cross::new((x + 5, y), 4, c.stroke_width(2)));
            }
        }
        if !s.acks.is_empty() {
            chart
                .draw_series(LineSeries::new(
                    thin(&s.acks, MAX_POINTS * 4).map(|a| (a.t, a.ack as f64)),
                    ShapeStyle::from(&BLACK).stroke_width(1),
                ))
                .map_err(err)?
                .label("DATA_ACK")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Goodput per subflow and in total against time.
pub fn tput_svg(s: &ConnSeries, tp: &Throughput) -> Result<String, RenderError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let t_end = tp.t.last().copied().unwrap_or(0.0) + tp.window;
        let top = tp.total.iter().copied().fold(0.0, f64::max).max(1.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("MPTCP connection {}: goodput per subflow ({} windows)", s.conn, seconds_label(tp.window)),
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..t_end, 0.0..top * 1.12)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("goodput (bit/s)")
            .y_label_formatter(&|v| unit_label(*v, "bit/s"))
            .x_label_formatter(&|v| format!("{v:.3}"))
            .draw()
            .map_err(err)?;
        let markers = &s.markers[..s.markers.len().min(MAX_MARKERS)];
        for (m, row) in markers.iter().zip(label_rows(markers, t_end)) {
            chart
                .draw_series(LineSeries::new([(m.t, 0.0), (m.t, top)], ShapeStyle::from(&RGBColor(150, 150, 150))))
                .map_err(err)?;
            let y = top * (1.08 - 0.035 * row as f64);
            chart.draw_series([Text::new(m.label.clone(), (m.t, y), ("sans-serif", 12).into_font())]).map_err(err)?;
        }
        let step = |v: &[f64]| -> Vec<(f64, f64)> {
            tp.t.iter().zip(v).flat_map(|(&t, &y)| [(t, y), (t + tp.window, y)]).collect()
        };
        for (i, (id, v)) in tp.subflows.iter().enumerate() {
            let c = colour(i);
            let label = s.subflows.iter().find(|sf| sf.id == *id).map_or(format!("sf {id}"), |sf| sf.label.clone());
            chart
                .draw_series(LineSeries::new(step(v), c.stroke_width(2)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
        chart
            .draw_series(LineSeries::new(step(&tp.total), BLACK.stroke_width(1)))
            .map_err(err)?
            .label("total")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
