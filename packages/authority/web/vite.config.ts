import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The publisher's web UI and its customers' portal (one app, two faces). Built with
 * `vite build packages/authority/web` (this directory is the root) into
 * packages/authority/web-dist, which `volact authority serve` serves at `/`.
 */
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: '../web-dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
});
