/** What the example page publishes as `window.lossBalancer` (read by test/browser-example.test.ts). */
export interface PageState {
  status: 'loading' | 'training' | 'done' | 'error';
  /** The backend running (tf.getBackend()). */
  backend: string;
  /** The backend asked for (query parameter `backend`); the page falls back to cpu when it cannot start. */
  requestedBackend: string;
  /** With strategy auto: the winner, once picked. */
  winner?: string;
  strategy: string;
  step: number;
  steps: number;
  terms: string[];
  /** alphas[k][i]: alpha of term i at step k. */
  alphas: number[][];
  error?: string;
}
