// JSX-free templates: htm turns tagged template literals into Preact elements at run time (no build transform).
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
