//! The scaling section's curve: throughput against the number of keys, one line per system
//! and connection count, drawn as SVG with `plotters`.

use std::path::Path;

use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// One line of the plot: its label, whether it is of many connections, and its points
/// (keys, M msg/s).
pub struct Series {
    pub label: String,
    pub family: Family,
    pub many_connections: bool,
    pub points: Vec<(f64, f64)>,
}

/// Which system a line is of; it picks the colour.
#[derive(Clone, Copy)]
pub enum Family {
    /// `writeln`: the application's encoder writes with `writeln!`, not `PushText`.
    Wallaroo {
        workers: usize,
        writeln: bool,
    },
    Timely {
        workers: usize,
    },
    HandWritten,
}

impl Family {
    fn colour(self) -> RGBColor {
        match self {
            Family::Wallaroo {
                workers: 1,
                writeln: false,
            } => RGBColor(0x6b, 0xae, 0xd6),
            Family::Wallaroo { writeln: false, .. } => RGBColor(0x08, 0x51, 0x9c),
            Family::Wallaroo {
                workers: 1,
                writeln: true,
            } => RGBColor(0x74, 0xc4, 0x76),
            Family::Wallaroo { writeln: true, .. } => RGBColor(0x23, 0x8b, 0x45),
            Family::Timely { workers: 1 } => RGBColor(0xfd, 0xae, 0x6b),
            Family::Timely { .. } => RGBColor(0xd9, 0x48, 0x01),
            Family::HandWritten => RGBColor(0x52, 0x52, 0x52),
        }
    }
}

/// Writes the curves to `path` as an SVG image.
pub fn scaling(path: &Path, title: &str, series: &[Series]) -> Result<(), String> {
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (760, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        let top = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0f64, f64::max);
        let (left, right) = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .fold((f64::MAX, 0.0f64), |(lo, hi), k| (lo.min(k), hi.max(k)));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(
                (left / 2.0..right * 2.0).log_scale(),
                0.0..(top * 1.15).max(1.0),
            )?;
        chart
            .configure_mesh()
            .x_desc("distinct keys (log scale)")
            .y_desc("M msg/s at saturation")
            .x_label_formatter(&|k| keys_label(*k))
            .light_line_style(BLACK.mix(0.04))
            .draw()?;
        for s in series {
            let colour = s.family.colour();
            let style = colour.stroke_width(2);
            if s.many_connections {
                chart
                    .draw_series(DashedLineSeries::new(s.points.clone(), 6, 4, style))?
                    .label(&s.label)
                    .legend(move |(x, y)| {
                        DashedPathElement::new(vec![(x, y), (x + 20, y)], 6, 4, style)
                    });
            } else {
                chart
                    .draw_series(LineSeries::new(s.points.clone(), style))?
                    .label(&s.label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            }
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("cannot draw {}: {e}", path.display()))
}

/// `27`, `10 k`, `1 M`.
fn keys_label(keys: f64) -> String {
    if keys >= 1e6 {
        format!("{} M", keys / 1e6)
    } else if keys >= 1e3 {
        format!("{} k", keys / 1e3)
    } else {
        format!("{keys}")
    }
}
