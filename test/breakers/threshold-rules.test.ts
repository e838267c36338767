import { describe, expect, it } from 'vitest';
import { evaluateThresholds } from '../../src/breakers/threshold-rules.js';

describe('evaluateThresholds', () => {
  it('does not trip exactly at the threshold (the threshold is the most allowed) but warns there', () => {
    const result = evaluateThresholds({ stepCount: 50 }, { stepCount: 50 }, 0.5);
    expect(result.trips).toEqual([]);
    expect(result.warnings).toEqual([{ metric: 'stepCount', threshold: 50, observed: 50 }]);
  });

  it('trips just over the threshold', () => {
    const result = evaluateThresholds({ tokenVelocity60s: 1000.001 }, { tokenVelocity60s: 1000 }, 0.5);
    expect(result.trips).toEqual([{ metric: 'tokenVelocity60s', threshold: 1000, observed: 1000.001 }]);
    expect(result.warnings).toEqual([]);
  });

  it('warns at exactly warnFraction × threshold and not just below', () => {
    expect(evaluateThresholds({ toolCallsPerMinute: 30 }, { toolCallsPerMinute: 60 }, 0.5).warnings).toHaveLength(1);
    const below = evaluateThresholds({ toolCallsPerMinute: 29.999 }, { toolCallsPerMinute: 60 }, 0.5);
    expect(below).toEqual({ trips: [], warnings: [] });
  });

  it('sorts trips by how far past their threshold they are', () => {
    const result = evaluateThresholds(
      { stepCount: 60, toolCallsPerMinute: 300, costUsd: 11 },
      { stepCount: 50, toolCallsPerMinute: 100, costUsd: 10 },
      0.8,
    );
    expect(result.trips.map((t) => t.metric)).toEqual(['toolCallsPerMinute', 'stepCount', 'costUsd']);
  });

  it('ignores metrics without a threshold or without a finite observation', () => {
    const result = evaluateThresholds({ stepCount: 1e9, errorRatio: NaN }, { errorRatio: 0.5, costUsd: 1 }, 0.5);
    expect(result).toEqual({ trips: [], warnings: [] });
  });

  it('treats a zero threshold as "none allowed": quiet at 0, trips on the first', () => {
    expect(evaluateThresholds({ subAgentDepth: 0 }, { subAgentDepth: 0 }, 0.5)).toEqual({ trips: [], warnings: [] });
    const tripped = evaluateThresholds({ subAgentDepth: 1, stepCount: 1000 }, { subAgentDepth: 0, stepCount: 10 }, 0.5);
    expect(tripped.trips.map((t) => t.metric)).toEqual(['subAgentDepth', 'stepCount']);
  });
});
