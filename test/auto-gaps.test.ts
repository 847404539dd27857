/**
 * Gaps of the `auto` selection found in a new-user trial (issue 14): `auto` in `list()`, the honest
 * cost of a selection ended early or interrupted, the warning of a custom loop that stops during the
 * selection, and fitBalanced's History describing the winner's trajectory.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AUTO_OPTION_NAMES } from '../src/core/auto-config.js';
import { create, list } from '../src/core/registry.js';
import { initBackend } from '../src/train/backend.js';

beforeAll(() => initBackend('cpu'));

describe('auto in list()', () => {
  it('is listed as a selector with its summary, options and paper; create() explains it is not a strategy', () => {
    const all = list();
    const auto = all.find((s) => s.name === 'auto')!;
    expect(auto.kind).toBe('selector');
    expect(auto.options).toEqual([...AUTO_OPTION_NAMES]);
    expect(auto.options).toContain('trialSteps');
    expect(auto.paper).toMatch(/Jamieson & Talwalkar.*https:\/\/arxiv\.org\/abs\/1502\.07943/);
    expect(auto.summary).toMatch(/successive halving/);
    expect(all.map((s) => s.name)).toEqual([...all.map((s) => s.name)].sort((a, b) => a.localeCompare(b)));
    expect(() => create('auto')).toThrow(/"auto" is a strategy selector, not a strategy.*balancer: 'auto'/);
    // every other entry builds, as code that iterates list() expects
    for (const s of all.filter((x) => x.kind !== 'selector')) expect(create(s.name).name).toBe(s.name);
    expect(list().find((s) => s.name === 'gradnorm')!.options).toContain('alpha');
  });
});
