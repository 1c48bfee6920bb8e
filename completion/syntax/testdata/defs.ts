export function dist(p: Point, q: Point): number {
  return Math.hypot(p.x - q.x, p.y - q.y);
}

export class Point {
  constructor(public x: number, public y: number) {}
  norm(): number { return Math.hypot(this.x, this.y); }
}

interface Shape { area(): number }
type Meters = number;
enum Color { Red, Green }
export const scale = 2;
