pub struct Point {
    pub x: f64,
    pub y: f64,
}

pub enum Shape { Circle(f64), Square(f64) }

impl Point {
    pub fn norm(&self) -> f64 { (self.x * self.x + self.y * self.y).sqrt() }
}

pub fn dist(p: &Point, q: &Point) -> f64 {
    ((p.x - q.x).powi(2) + (p.y - q.y).powi(2)).sqrt()
}

trait Area { fn area(&self) -> f64; }
const SCALE: i32 = 2;
