//! Geohash math of Redis's geo commands (geohash.c, geohash_helper.c): 52-bit interleaved
//! WGS84 cells stored as sorted-set scores, cell neighbours, the search-area estimate, and
//! haversine distances on Redis's earth radius. Pure functions, no I/O.

/// Longitude bounds.
pub const LONG_MIN: f64 = -180.0;
/// Longitude bounds.
pub const LONG_MAX: f64 = 180.0;
/// Latitude bounds (EPSG:900913: no geocoding at the poles).
pub const LAT_MIN: f64 = -85.05112878;
/// Latitude bounds.
pub const LAT_MAX: f64 = 85.05112878;
/// Steps of a stored score: 26 * 2 = 52 bits.
pub const STEP_MAX: u8 = 26;

const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

/// A cell: `step * 2` interleaved bits (latitude in the even bits, longitude in the odd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cell {
    /// The bits.
    pub bits: u64,
    /// Precision (1..=26).
    pub step: u8,
}

impl Cell {
    /// The zero cell stands for "no cell" (Redis's `HASHISZERO`).
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

/// A coordinate range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
}

/// The area a cell covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    /// Longitudes.
    pub lon: Range,
    /// Latitudes.
    pub lat: Range,
}

/// Redis's coordinate ranges for stored positions.
pub const WGS84: (Range, Range) = (Range { min: LONG_MIN, max: LONG_MAX }, Range { min: LAT_MIN, max: LAT_MAX });

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] =
        [0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (xlo as u64, ylo as u64);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (interleaved, interleaved >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// Encodes a position into a cell of `step` precision within the given ranges (None when out
/// of range).
pub fn encode(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<Cell> {
    if step == 0 || step > 32 || !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_off = (lat - lat_r.min) / (lat_r.max - lat_r.min) * scale;
    let lon_off = (lon - lon_r.min) / (lon_r.max - lon_r.min) * scale;
    Some(Cell { bits: interleave64(lat_off as u32, lon_off as u32), step })
}

/// Encodes a position with Redis's stored ranges.
pub fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Cell> {
    encode(WGS84.0, WGS84.1, lon, lat, step)
}

/// The area of a cell.
pub fn decode(lon_r: Range, lat_r: Range, cell: Cell) -> Option<Area> {
    if cell.is_zero() {
        return None;
    }
    let sep = deinterleave64(cell.bits);
    let ilat = sep as u32 as f64;
    let ilon = (sep >> 32) as u32 as f64;
    let div = (1u64 << cell.step) as f64;
    let (lat_scale, lon_scale) = (lat_r.max - lat_r.min, lon_r.max - lon_r.min);
    Some(Area {
        lat: Range { min: lat_r.min + (ilat / div) * lat_scale, max: lat_r.min + ((ilat + 1.0) / div) * lat_scale },
        lon: Range { min: lon_r.min + (ilon / div) * lon_scale, max: lon_r.min + ((ilon + 1.0) / div) * lon_scale },
    })
}

/// A score's cell bits as Redis computes them: a C cast of the double to a 64-bit unsigned
/// integer, as x86-64 performs it. A negative score wraps (-1 is all ones: a position clamped
/// to the north-east corner), where Rust's `as u64` would saturate to 0 (the south-west one);
/// scores that fit no integer give the conversion's "indefinite" value.
fn score_bits(score: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const INDEFINITE: u64 = 1 << 63;
    let signed = |x: f64| if x.is_nan() || !(-TWO_63..TWO_63).contains(&x) { INDEFINITE } else { x as i64 as u64 };
    if score < TWO_63 {
        signed(score)
    } else {
        signed(score - TWO_63) ^ INDEFINITE
    }
}

/// The position a stored score stands for (the centre of its cell), as (lon, lat).
pub fn decode_score(score: f64) -> Option<(f64, f64)> {
    let area = decode(WGS84.0, WGS84.1, Cell { bits: score_bits(score), step: STEP_MAX })?;
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some((lon, lat))
}

/// A cell's bits aligned to 52 bits (a sorted-set score).
pub fn align52(cell: Cell) -> u64 {
    cell.bits << (52 - cell.step as u32 * 2)
}

/// The stored score of a position.
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode_wgs84(lon, lat, STEP_MAX).map(align52)
}

fn move_x(cell: &mut Cell, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = cell.bits & 0xaaaaaaaaaaaaaaaa;
    let y = cell.bits & 0x5555555555555555;
    let zz = 0x5555555555555555u64 >> (64 - cell.step as u32 * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaaaaaaaaaaaaaau64 >> (64 - cell.step as u32 * 2);
    cell.bits = x | y;
}

fn move_y(cell: &mut Cell, d: i8) {
    if d == 0 {
        return;
    }
    let x = cell.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = cell.bits & 0x5555555555555555;
    let zz = 0xaaaaaaaaaaaaaaaau64 >> (64 - cell.step as u32 * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555555555555555u64 >> (64 - cell.step as u32 * 2);
    cell.bits = x | y;
}

fn moved(cell: Cell, dx: i8, dy: i8) -> Cell {
    let mut c = cell;
    move_x(&mut c, dx);
    move_y(&mut c, dy);
    c
}

/// A search shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// A circle of this radius (in the unit).
    Radius(f64),
    /// A box of this width and height (in the unit).
    Box(f64, f64),
}

/// What a search looks at: centre, shape, and the unit's size in meters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Search {
    /// Longitude of the centre.
    pub lon: f64,
    /// Latitude of the centre.
    pub lat: f64,
    /// The shape.
    pub shape: Shape,
    /// Meters per unit.
    pub conversion: f64,
}

fn estimate_steps(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

fn bounding_box(s: &Search) -> [f64; 4] {
    let (h, w) = match s.shape {
        Shape::Radius(r) => (r, r),
        Shape::Box(w, h) => (h / 2.0, w / 2.0),
    };
    let (height, width) = (h * s.conversion, w * s.conversion);
    let lat_delta = (height / EARTH_RADIUS_IN_METERS) / D_R;
    let long_delta_top = (width / EARTH_RADIUS_IN_METERS / ((s.lat + lat_delta) * D_R).cos()) / D_R;
    let long_delta_bottom = (width / EARTH_RADIUS_IN_METERS / ((s.lat - lat_delta) * D_R).cos()) / D_R;
    let south = s.lat < 0.0;
    [
        if south { s.lon - long_delta_bottom } else { s.lon - long_delta_top },
        s.lat - lat_delta,
        if south { s.lon + long_delta_bottom } else { s.lon + long_delta_top },
        s.lat + lat_delta,
    ]
}

/// The cells to scan for a search, in Redis's order (centre, N, S, E, W, NE, NW, SE, SW);
/// useless neighbours are zero cells.
pub fn areas(s: &Search) -> [Cell; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(s);
    let radius_m = match s.shape {
        Shape::Radius(r) => r,
        Shape::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
    } * s.conversion;
    let (lon_r, lat_r) = WGS84;
    let mut steps = estimate_steps(radius_m, s.lat);
    let at = |steps: u8| {
        let c = encode(lon_r, lat_r, s.lon, s.lat, steps).unwrap_or_default();
        [
            c,
            moved(c, 0, 1),
            moved(c, 0, -1),
            moved(c, 1, 0),
            moved(c, -1, 0),
            moved(c, 1, 1),
            moved(c, -1, 1),
            moved(c, 1, -1),
            moved(c, -1, -1),
        ]
    };
    let mut cells = at(steps);
    let area_of = |c: Cell| decode(lon_r, lat_r, c);
    let decrease = match (area_of(cells[1]), area_of(cells[2]), area_of(cells[3]), area_of(cells[4])) {
        (Some(n), Some(so), Some(e), Some(w)) => {
            n.lat.max < max_lat || so.lat.min > min_lat || e.lon.max < max_lon || w.lon.min > min_lon
        }
        _ => false,
    };
    if steps > 1 && decrease {
        steps -= 1;
        cells = at(steps);
    }
    if steps >= 2 {
        if let Some(area) = area_of(cells[0]) {
            let zero = |cells: &mut [Cell; 9], idx: [usize; 3]| idx.iter().for_each(|&i| cells[i] = Cell::default());
            if area.lat.min < min_lat {
                zero(&mut cells, [2, 8, 7]);
            }
            if area.lat.max > max_lat {
                zero(&mut cells, [1, 5, 6]);
            }
            if area.lon.min < min_lon {
                zero(&mut cells, [4, 8, 6]);
            }
            if area.lon.max > max_lon {
                zero(&mut cells, [3, 7, 5]);
            }
        }
    }
    cells
}

/// The score range `[min, max)` of the stored positions inside a cell.
pub fn score_range(cell: Cell) -> (u64, u64) {
    let min = align52(cell);
    let max = align52(Cell { bits: cell.bits + 1, step: cell.step });
    (min, max)
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * ((lat2 * D_R) - (lat1 * D_R)).abs()
}

/// Haversine distance in meters between two (lon, lat) positions (Redis's formula).
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (lon1 * D_R, lon2 * D_R);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (lat1 * D_R, lat2 * D_R);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// The distance from the search centre to a position, when the position is inside the shape.
pub fn within(s: &Search, lon: f64, lat: f64) -> Option<f64> {
    match s.shape {
        Shape::Radius(r) => {
            let d = distance(s.lon, s.lat, lon, lat);
            (d <= r * s.conversion).then_some(d)
        }
        Shape::Box(w, h) => {
            if lat_distance(lat, s.lat) > h * s.conversion / 2.0 {
                return None;
            }
            if distance(lon, lat, s.lon, lat) > w * s.conversion / 2.0 {
                return None;
            }
            Some(distance(s.lon, s.lat, lon, lat))
        }
    }
}

/// The standard 11-character geohash of a stored score (re-encoded with latitudes -90..90).
pub fn standard_geohash(score: f64) -> Option<String> {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score)?;
    let cell = encode(Range { min: -180.0, max: 180.0 }, Range { min: -90.0, max: 90.0 }, lon, lat, 26)?;
    Some(
        (0..11)
            .map(|i| {
                let idx = if i == 10 { 0 } else { (cell.bits >> (52 - (i + 1) * 5)) & 0x1f };
                ALPHABET[idx as usize] as char
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_convert_to_bits_as_a_c_cast_does() {
        assert_eq!(score_bits(0.0), 0);
        assert_eq!(score_bits(3.9), 3);
        assert_eq!(score_bits(-0.25), 0);
        assert_eq!(score_bits(-1.0), u64::MAX);
        assert_eq!(score_bits(-5.0), u64::MAX - 4);
        assert_eq!(score_bits(f64::NEG_INFINITY), 1 << 63);
        assert_eq!(score_bits(f64::INFINITY), 0);
        assert_eq!(score_bits(1e19), 10_000_000_000_000_000_000);
        assert_eq!(score_bits(1e20), 0);
        // A score of -1 is the north-east corner, as redis-server decodes it.
        let (lon, lat) = decode_score(-1.0).unwrap();
        assert_eq!((lon, lat), (LONG_MAX, LAT_MAX));
    }

    #[test]
    fn scores_and_hashes_match_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo": score 3479099956230698.
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(standard_geohash(3479099956230698.0).as_deref(), Some("sqc8b49rny0"));
        let (lon, lat) = decode_score(3479099956230698.0).expect("decodes");
        assert!((lon - 13.361389338970184).abs() < 1e-12 && (lat - 38.1155563954963).abs() < 1e-12);
        // GEODIST Sicily Palermo Catania = 166274.1516 m.
        let (lon2, lat2) = decode_score(score_of(15.087269, 37.502669).expect("catania") as f64).expect("decodes");
        assert_eq!(format!("{:.4}", distance(lon, lat, lon2, lat2)), "166274.1516");
    }
}
