import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The console's web UI. Built with `vite build packages/console/web` (this directory is the
 * root) into packages/console/web-dist, which `volact console serve` serves.
 */
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: '../web-dist',
    emptyOutDir: true,
    sourcemap: false,
    // react-dom and chart.js are the bulk; the reports page (with chart.js) is its own chunk.
    chunkSizeWarningLimit: 400,
  },
});
