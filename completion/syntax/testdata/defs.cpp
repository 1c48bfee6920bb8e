#include <cmath>

namespace geo {

class Point {
public:
	double x, y;
	double norm() const { return std::hypot(x, y); }
};

double dist(const Point &p, const Point &q) {
	return std::hypot(p.x - q.x, p.y - q.y);
}

double Point::len() const { return norm(); }

}
