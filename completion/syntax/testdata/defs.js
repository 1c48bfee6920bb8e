export function dist(p, q) {
  return Math.hypot(p.x - q.x, p.y - q.y);
}

class Point {
  constructor(x, y) { this.x = x; this.y = y; }
  norm() { return Math.hypot(this.x, this.y); }
}

const scale = 2, other = 3;
let origin = new Point(0, 0);
const App = () => <div>hi</div>;
