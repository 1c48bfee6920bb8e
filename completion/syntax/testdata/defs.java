package geo;

public class Point {
    double x, y;

    public Point(double x, double y) { this.x = x; this.y = y; }

    public double norm() {
        return Math.hypot(x, y);
    }
}

interface Shape { double area(); }

enum Color { RED, GREEN }
