#include <math.h>

#define SCALE 2

struct point {
	double x, y;
};

typedef struct point point_t;

static double *buf;

double dist(struct point p, struct point q) {
	return hypot(p.x - q.x, p.y - q.y);
}
