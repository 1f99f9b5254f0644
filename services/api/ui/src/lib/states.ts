import type { RolloutHostState } from '@nebula/contracts';

/**
 * How each host state looks: a color, and an icon and a word too, so the state never rests on the
 * color alone (color-blind readers, print). Colors from the Okabe-Ito palette, which stays distinct
 * under the common color-vision deficiencies.
 */
export interface StateLook {
  color: string;
  icon: string;
  label: string;
}

/** `applying` is not reported by the API yet (a host has a result or none); it is drawn if it comes. */
export type HostStateShown = RolloutHostState | 'applying';

export const STATE_LOOK: Record<HostStateShown, StateLook> = {
  pending: { color: '#c8ccd2', icon: '○', label: 'pending' },
  applying: { color: '#56b4e9', icon: '◐', label: 'applying' },
  applied: { color: '#009e73', icon: '✓', label: 'applied' },
  failed: { color: '#d55e00', icon: '✗', label: 'failed' },
  superseded: { color: '#cc79a7', icon: '↷', label: 'superseded' },
  offline: { color: '#4d4d4d', icon: '⊘', label: 'offline' },
};

/** The order of the legend and of the counts: what needs eyes first. */
export const STATE_ORDER: readonly HostStateShown[] = ['failed', 'offline', 'applying', 'pending', 'superseded', 'applied'];

export function lookOf(state: string): StateLook {
  return (STATE_LOOK as Record<string, StateLook | undefined>)[state] ?? { color: '#999999', icon: '?', label: state };
}
