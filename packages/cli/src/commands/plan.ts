import type { Command } from 'commander';
import { loadInventory, planInventory, renderJson, renderMarkdown, renderText } from '@volact/planner';
import { CliError } from '../output.js';
import type { Run } from '../runtime.js';

interface PlanOptions {
  json?: boolean;
  markdown?: boolean;
}

/**
 * `volact plan INVENTORY`: the planning method of plan-for-volume-activation.txt (Table 1)
 * applied to an inventory of sites (YAML or JSON); see docs/planner.md.
 */
export function registerPlan(program: Command, run: Run): void {
  program
    .command('plan')
    .description('recommend activation methods, KMS hosts, MAK activations and keys for an inventory of sites')
    .argument('<inventory>', 'inventory of sites: .yaml, .yml or .json (other names: sniffed)')
    .option('--json', 'print the plan as JSON')
    .option('--markdown', 'print the plan as Markdown')
    .action(
      run(async (o: PlanOptions, file: string) => {
        if (o.json && o.markdown) throw new CliError('OPTION_INVALID', '--json and --markdown: choose one');
        const plan = planInventory(loadInventory(file));
        process.stdout.write(o.json ? renderJson(plan) : o.markdown ? renderMarkdown(plan) : renderText(plan));
      }),
    );
}
