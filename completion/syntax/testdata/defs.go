package geo

import "math"

// Point is a point in the plane.
type Point struct {
	X, Y float64
}

type (
	Meters float64
	Feet   float64
)

const Scale = 2

var Origin = Point{}

// Dist returns the distance between p and q.
func Dist(p, q Point) float64 {
	return math.Hypot(p.X-q.X, p.Y-q.Y)
}

func (p Point) Add(q Point) Point {
	return Point{p.X + q.X, p.Y + q.Y}
}
