export type { AnthropicGeneratorOptions, AnthropicSdk } from './anthropic-generator.js';
export {
  AnthropicGenerator,
  ClaudeSettings,
  DEFAULT_CLAUDE_MODEL,
  loadAnthropicSdk,
} from './anthropic-generator.js';
export { BUILTIN_CLAUDE_PROFILES, ClaudePhase, ClaudeProfile } from './claude-profiles.js';
export type {
  CodeGenerator,
  ErrorFeedback,
  GeneratedCode,
  GenerationRequest,
  GeneratorLogger,
  TokenUsage,
} from './code-generator.js';
export type { CustomGeneratorContext } from './custom-generator.js';
export { CustomGeneratorRegistration, loadCustomGenerator, resolveModuleSpecifier } from './custom-generator.js';
export { extractCode, looksLikePython } from './extract-code.js';
export type { CreateCodeGeneratorOptions } from './factory.js';
export { BUILTIN_GENERATORS, createCodeGenerator } from './factory.js';
export { HybridGenerator, HybridSettings } from './hybrid-generator.js';
export type { DurationHistogram, GeneratorMetrics, TokenCounter } from './instrumented-generator.js';
export { instrumentGenerator } from './instrumented-generator.js';
export type { MockBehavior, MockGeneratorOptions } from './mock-generator.js';
export { MOCK_BEHAVIOR_NAMES, MOCK_BEHAVIORS, MockGenerator } from './mock-generator.js';
export type { GeneratorBuildContext, OpenAiGeneratorOptions } from './openai-generator.js';
export { OpenAiGenerator } from './openai-generator.js';
export type { CodeFormat, Prompt, PromptOptions } from './prompt.js';
export {
  buildCodePrompt,
  buildSystemPrompt,
  buildTaskSection,
  DEFAULT_SYSTEM_ROLE,
  describeShape,
  renderErrorChain,
  renderErrorFeedback,
  trimMiddle,
} from './prompt.js';
export { LlmSettings } from './settings.js';
