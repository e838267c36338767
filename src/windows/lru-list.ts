// An intrusive doubly linked list in least-recently-used order. The nodes carry the links, so
// touching a window on every span costs two pointer swaps and no allocation, and idle eviction
// walks from the oldest end only over what it evicts.

export interface LruNode<T> {
  lruPrev: T | null;
  lruNext: T | null;
  /** store clock (ms) of the last touch */
  lastSeenMs: number;
}

export class LruList<T extends LruNode<T>> {
  /** most recently used */
  private newest: T | null = null;
  /** least recently used */
  private oldestNode: T | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  oldest(): T | null {
    return this.oldestNode;
  }

  /** Mark as used at `nowMs` (inserting it if new). */
  touch(node: T, nowMs: number): void {
    node.lastSeenMs = nowMs;
    if (this.newest === node) return;
    if (node.lruPrev !== null || node.lruNext !== null || this.oldestNode === node) this.unlink(node);
    node.lruNext = null;
    node.lruPrev = this.newest;
    if (this.newest !== null) this.newest.lruNext = node;
    this.newest = node;
    if (this.oldestNode === null) this.oldestNode = node;
    this.count++;
  }

  remove(node: T): void {
    if (node.lruPrev === null && node.lruNext === null && this.oldestNode !== node) return;
    this.unlink(node);
  }

  private unlink(node: T): void {
    if (node.lruPrev !== null) node.lruPrev.lruNext = node.lruNext;
    else this.oldestNode = node.lruNext;
    if (node.lruNext !== null) node.lruNext.lruPrev = node.lruPrev;
    else this.newest = node.lruPrev;
    node.lruPrev = null;
    node.lruNext = null;
    this.count--;
  }
}
