/**
 * Backend selection: `@tensorflow/tfjs-node` ('tensorflow') when it is installed and loads, else the
 * embedded WebAssembly backend ('wasm'), else plain JavaScript ('cpu'). tfjs-node is an optional peer
 * dependency: it downloads libtensorflow when installed, which fails on machines without internet, so
 * it is never installed by `npm install loss-balancer` and its absence is never an error.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

/** The backends loss-balancer knows how to start. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
/** `'auto'`: the first of tensorflow, wasm, cpu that starts. */
export type BackendChoice = BackendName | 'auto';

const ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

async function tryNode(): Promise<boolean> {
  try {
    const mod = '@tensorflow/tfjs-node';
    await import(/* @vite-ignore */ mod);
    return tf.findBackend('tensorflow') !== null || tf.engine().registryFactory.tensorflow !== undefined;
  } catch {
    return false;
  }
}

type Listener = (...args: unknown[]) => void;

/**
 * The wasm backend's Emscripten glue installs `uncaughtException` / `unhandledRejection` handlers
 * that rethrow, so that Node prints the glue's whole minified source line with any uncaught error.
 * Remove the handlers it added during start-up; Node's own reporting is then used.
 */
async function withoutGlueHandlers<T>(f: () => Promise<T>): Promise<T> {
  if (typeof process === 'undefined' || typeof process.listeners !== 'function') return f();
  const events = ['uncaughtException', 'unhandledRejection'] as const;
  const before = events.map((e) => new Set(process.listeners(e as 'uncaughtException') as Listener[]));
  try {
    return await f();
  } finally {
    events.forEach((e, i) => {
      for (const l of process.listeners(e as 'uncaughtException') as Listener[]) {
        if (!before[i].has(l)) process.removeListener(e as 'uncaughtException', l as never);
      }
    });
  }
}

async function start(name: BackendName): Promise<boolean> {
  if (name === 'tensorflow' && !(await tryNode())) return false;
  try {
    return await withoutGlueHandlers(async () => (await tf.setBackend(name)) && (await tf.ready(), tf.getBackend() === name));
  } catch {
    return false;
  }
}

/**
 * Start a backend. `choice` defaults to the environment variable `LOSS_BALANCER_BACKEND`, else
 * `'auto'`. A named backend that cannot start falls back along tensorflow → wasm → cpu, with a
 * warning. Returns the name of the backend in use.
 */
export async function initBackend(choice?: BackendChoice, warn: (m: string) => void = console.warn): Promise<BackendName> {
  const fromEnv = typeof process !== 'undefined' ? process.env?.LOSS_BALANCER_BACKEND : undefined;
  const wanted = (choice ?? fromEnv ?? 'auto') as string;
  if (wanted !== 'auto' && !(ORDER as readonly string[]).includes(wanted)) {
    throw new Error(`unknown backend "${wanted}"; use one of auto, ${ORDER.join(', ')}`);
  }
  const candidates = wanted === 'auto' ? ORDER : [wanted as BackendName, ...ORDER.filter((b) => b !== wanted)];
  for (const name of candidates) {
    if (await start(name)) {
      if (wanted !== 'auto' && name !== wanted) warn(`loss-balancer: backend "${wanted}" is not available; using "${name}"`);
      return name;
    }
  }
  throw new Error('no tfjs backend could be started');
}

/** The name of the backend in use. */
export function currentBackend(): string {
  return tf.getBackend();
}
