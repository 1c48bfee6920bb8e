import math

class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def norm(self):
        return math.hypot(self.x, self.y)

def dist(p, q):
    return math.hypot(p.x - q.x, p.y - q.y)

@decorated
def helper():
    pass
