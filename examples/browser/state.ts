/** What the example page publishes as `window.lossBalancer` (read by test/browser-example.test.ts). */
export interface PageState {
  status: 'loading' | 'training' | 'done' | 'error';
  backend: string;
  strategy: string;
  step: number;
  steps: number;
  terms: string[];
  /** alphas[k][i]: alpha of term i at step k. */
  alphas: number[][];
  error?: string;
}
