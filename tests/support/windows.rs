//! ARCHITECTURE.md §9 computed without the framework, for the tests of the window_average
//! example: the windows a sequence of readings gives, and readings to give it.

use std::collections::BTreeMap;

use super::Rng;

/// `(sensor, time, value)`, as a line of the input.
pub type Reading = (String, i64, f64);

/// What §9 says the example outputs for `readings`, read in this order: per sensor, its
/// lines in order; and how many readings were late.
pub fn model(readings: &[Reading]) -> (BTreeMap<String, Vec<String>>, u64) {
    model_until(readings, true)
}

/// [`model`], and with `ended` false, of an input that has not ended: without the windows
/// that the end fires.
pub fn model_until(readings: &[Reading], ended: bool) -> (BTreeMap<String, Vec<String>>, u64) {
    // Per sensor, open windows by start: (count, sum, max).
    let mut open: BTreeMap<&str, BTreeMap<i64, (u64, f64, f64)>> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut fire = |sensor: &str, start: i64, (count, sum, max): (u64, f64, f64)| {
        out.entry(sensor.to_string()).or_default().push(format!(
            "{sensor} [{start},{}) count={count} mean={:.3} max={max:.3}",
            start + 10_000,
            sum / count as f64
        ));
    };
    let (mut largest, mut late) = (None::<i64>, 0);
    for (sensor, time, value) in readings {
        // The watermark at the reading's arrival: the largest time before it, minus 2 s.
        let watermark = largest.map(|t| t - 2_000);
        let start = time.div_euclid(10_000) * 10_000;
        if watermark.is_some_and(|w| w >= start + 10_000) {
            late += 1;
        } else {
            let window = open
                .entry(sensor)
                .or_default()
                .entry(start)
                .or_insert((0, 0.0, f64::MIN));
            window.0 += 1;
            window.1 += value;
            window.2 = window.2.max(*value);
        }
        largest = Some(largest.map_or(*time, |t| t.max(*time)));
        let watermark = largest.unwrap() - 2_000;
        for (sensor, windows) in &mut open {
            while let Some(entry) = windows.first_entry() {
                if *entry.key() + 10_000 > watermark {
                    break;
                }
                let start = *entry.key();
                fire(sensor, start, entry.remove());
            }
        }
    }
    if ended {
        for (sensor, windows) in open {
            for (start, window) in windows {
                fire(sensor, start, window);
            }
        }
    }
    (out, late)
}

/// `n` readings of 7 sensors, each reading up to 2.5 s out of order (so some are late), with
/// about one in 8 at a window's first or last millisecond, and sensors that pause for whole
/// windows.
pub fn readings(n: usize, seed: u64) -> Vec<Reading> {
    let mut rng = Rng::new(seed);
    let mut clock = 0i64;
    (0..n)
        .map(|_| {
            clock += rng.below(40) as i64;
            let sensor = rng.below(7);
            // Sensor 6 only speaks in every third minute.
            let sensor = if sensor == 6 && (clock / 60_000) % 3 != 0 {
                5
            } else {
                sensor
            };
            let mut time = (clock - rng.below(2_500) as i64).max(0);
            match rng.below(16) {
                0 => time = time / 10_000 * 10_000,
                1 => time = time / 10_000 * 10_000 + 9_999,
                _ => {}
            }
            let value = rng.below(200_000) as f64 / 1_000.0 - 50.0;
            (format!("sensor-{sensor}"), time, value)
        })
        .collect()
}

pub fn input_text(readings: &[Reading]) -> String {
    readings
        .iter()
        .map(|(s, t, v)| format!("{s},{t},{v}\n"))
        .collect()
}

pub fn grouped(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let sensor = line.split(' ').next().unwrap();
        groups
            .entry(sensor.to_string())
            .or_default()
            .push(line.to_string());
    }
    groups
}
